import sys

from lehttpd.cli import main

sys.exit(main())
