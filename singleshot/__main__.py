"""``python -m singleshot`` runs the command line."""

import sys

from singleshot.cli import main

sys.exit(main())
