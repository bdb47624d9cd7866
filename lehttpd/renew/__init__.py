"""`lehttpd renew`, `revoke`, `delete` and `timer`: keeping many lineages fresh, unattended."""
