import sys

from cite_live.cli import main

sys.exit(main())
