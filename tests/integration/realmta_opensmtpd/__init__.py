"""Real-daemon tests for OpenSMTPD (Debian package extracted into a private root, run on loopback)."""
