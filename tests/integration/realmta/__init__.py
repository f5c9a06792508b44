"""Tests against real MTA daemons that are not installed on the machine: their Debian packages are
downloaded (``apt-get download``), unpacked into a private root and run from there, as our child
processes, on loopback. ``syslog_capture`` gives daemons that log only through syslog(3) a private
``/dev/log`` (a mount namespace) whose datagrams the test reads."""
