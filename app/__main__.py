"""``python -m app`` runs the command line, like the ``lumbar-instability`` script."""

import sys

from app.cli import main

sys.exit(main())
