"""`python -m viewer` runs the radview command line."""

import sys

from viewer.cli import main

sys.exit(main())
