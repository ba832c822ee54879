"""The ``lumbar-instability`` command line.

Each subcommand lives in its own module under :mod:`app.commands` and provides

- ``HELP``: one line for ``lumbar-instability --help``;
- ``add_arguments(parser)``: its options (module import must stay cheap: heavy
  imports go inside ``run``);
- ``run(args) -> int``: the exit status.

A command reports bad input by raising :class:`app.errors.UserError`; the
dispatcher prints its one-line message and exits with its status (2 by
default).  Users never see a traceback unless they ask for one with ``--debug``.

The ``view`` subcommand starts the Qt layer, which ``app`` must not import: the
installed ``lumbar-instability`` script is :func:`ui.launcher.main`, which adds
``view`` through ``extra_commands``.  ``python -m app`` has every other command.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Mapping, Sequence

from app import __version__
from app.errors import UserError

# Subcommand name -> module.  Order is the order of ``--help``.
COMMANDS: dict[str, str] = {
    "measure": "app.commands.measure",
    "info": "app.commands.info",
    "track": "app.commands.track",
    "detect": "app.commands.detect",
    "complete": "app.commands.complete",
    "report": "app.commands.report",
    "batch": "app.commands.batch",
    "agreement": "app.commands.agreement",
    "phantom": "app.commands.phantom",
}

PROG = "lumbar-instability"


def _available_commands(extra_commands: Mapping[str, str] | None = None) -> dict[str, object]:
    modules = {}
    for name, module_name in {**(extra_commands or {}), **COMMANDS}.items():
        try:
            modules[name] = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:  # a real missing dependency: do not hide it
                raise
    return modules


def build_parser(extra_commands: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    """The argument parser with every available subcommand.

    Parameters
    ----------
    extra_commands : mapping of str to str, optional
        More subcommands (name -> module), listed first; used by the layer above
        ``app`` to add the commands that need it.
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Radiographic instability of the lumbar spine on flexion and extension films. "
            "A measurement aid, not a diagnosis."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show the full traceback of an internal error"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, module in _available_commands(extra_commands).items():
        cmd = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def main(
    argv: Sequence[str] | None = None, extra_commands: Mapping[str, str] | None = None
) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser(extra_commands)
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except UserError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # an internal error: one line unless --debug
        if args.debug:
            raise
        print(
            f"{PROG}: internal error: {type(exc).__name__}: {exc} (rerun with --debug for details)",
            file=sys.stderr,
        )
        return 3


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
