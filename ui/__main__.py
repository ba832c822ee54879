"""``python -m ui`` runs the full command line, like the ``lumbar-instability`` script."""

import sys

from ui.launcher import main

sys.exit(main())
