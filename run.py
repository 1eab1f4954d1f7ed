"""Run ril_dash from a checkout: ``python run.py`` serves the demo project (see ``--help``)."""

import sys

from ril_dash.cli import main

if __name__ == "__main__":
    sys.exit(main())
