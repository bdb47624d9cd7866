"""Old name of reading.py (it reads the tree; it never held a session). Kept only so that branches written against
it (i9's challenge.py) still import; delete once they use lehttpd.apache.reading."""
from lehttpd.apache.reading import Source, discover_source, list_vhosts, open_tree, scan_globals  # noqa: F401
