"""The comments by which lehttpd recognises what it wrote (one definition, read by the planner and the listing)."""

MANAGED_MARK = "# Managed by lehttpd"                      # first line of every SSL vhost lehttpd writes
MANAGED_VHOST_MARK = MANAGED_MARK + " for certificate"
OPTIONS_MARK = "# Managed by lehttpd: TLS options, body sha256 "
REDIRECT_BEGIN = "# BEGIN lehttpd redirect"
REDIRECT_END = "# END lehttpd redirect"
