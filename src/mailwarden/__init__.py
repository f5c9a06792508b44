"""mailwarden: find, explain and stop the abuse of a mail server."""

__version__ = "0.1.0"
