"""Real-daemon tests for Courier-IMAP (Debian packages extracted into a private root, run on loopback)."""
