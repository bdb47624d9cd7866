"""lehttpd scan: find, rank and fix mixed content (see README, "Mixed content: lehttpd scan")."""
