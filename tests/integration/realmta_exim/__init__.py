"""Real-daemon tests for Exim 4 (Debian's exim4 packages extracted into a private root, run on loopback)."""
