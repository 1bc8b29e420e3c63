"""``python -m pytraj``: the same as the ``pytraj`` command."""

from __future__ import annotations

import sys

from pytraj.cli import main

if __name__ == "__main__":
    sys.exit(main())
