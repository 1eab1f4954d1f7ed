"""``python -m ril_dash`` runs the command line."""

import sys

from ril_dash.cli import main

sys.exit(main())
