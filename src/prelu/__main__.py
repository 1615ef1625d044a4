"""``python -m prelu``: the same as the ``prelu`` command (see :mod:`prelu.cli`)."""

from prelu.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
