"""The ``lumbar-instability`` script: the command line of :mod:`app` plus ``view``.

The launcher sits in the top layer because ``view`` starts Qt; every other
subcommand is :mod:`app`'s and imports no Qt (``python -m app`` runs them alone).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from app.cli import main as app_main

UI_COMMANDS = {"view": "ui.command_view"}
"""Subcommands that need the Qt layer (name -> module)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with the viewer; returns the exit status."""
    return app_main(argv, extra_commands=UI_COMMANDS)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
