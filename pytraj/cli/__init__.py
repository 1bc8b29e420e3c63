"""The ``pytraj`` command: look at, check, continue and combine studies from a shell.

Each subcommand lives in its own module of this package and registers itself in
:data:`SUBCOMMANDS`; a module provides ``add_parser(subparsers)``, which adds its
parser and sets ``handler`` to a function ``(args) -> int`` (the exit status). The
command sits on the public API only and never unpickles anything.

Errors are one clear line on stderr and a non-zero exit status, never a traceback:
``pytraj`` turns every :class:`~pytraj.errors.PytrajError` (and a missing file) into
``pytraj <subcommand>: error: <message>`` and exits with status 1; a wrong command line
exits with status 2 (argparse's convention).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["SUBCOMMANDS", "build_parser", "main"]

#: The subcommand modules, in the order ``pytraj --help`` lists them.
SUBCOMMANDS: tuple[str, ...] = (
    "info",
    "tree",
    "runs",
    "show",
    "export",
    "report",
    "check",
    "resume",
    "merge",
)

_EPILOG = """\
examples:
  pytraj check out/study.h5          probe a file for damage, in a separate process
  pytraj resume out/study.h5         continue a study whose run function is importable
  pytraj merge a.h5 b.h5 -o all.h5   join shards or studies into one file
  pytraj info out/study.h5           what the file holds: runs by status, parameters, results
  pytraj runs out/study.h5 --where 'x >= 2 and status == "completed"' --sort z
  pytraj report out/study.h5 -o report.html

'pytraj SUBCOMMAND --help' describes each subcommand.
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``pytraj`` command, with every subcommand."""
    from pytraj import __version__

    parser = argparse.ArgumentParser(
        prog="pytraj",
        description="Look at, check, continue and combine pytraj studies (HDF5 files).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"pytraj {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="SUBCOMMAND")
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"pytraj.cli.{name}")
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``pytraj`` command with ``argv`` (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status: 0 on success, 1 when the subcommand failed, 2 for a wrong
        command line.
    """
    from pytraj.errors import PytrajError

    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args))
    except PytrajError as exc:
        print(f"pytraj {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except FileNotFoundError as exc:
        print(f"pytraj {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"pytraj {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `pytraj runs FILE | head` closes the pipe early: not an error of ours.
        return 0
