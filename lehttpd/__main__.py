import sys

from lehttpd.entry import main

sys.exit(main())
