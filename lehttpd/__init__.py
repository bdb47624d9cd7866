"""lehttpd: from plain HTTP to a hardened HTTPS Apache site, and keeping it there."""

__version__ = "0.1.0"
