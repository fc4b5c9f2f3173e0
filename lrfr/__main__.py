"""``python -m lrfr`` (and ``torchrun -m lrfr train ...``) runs the ``lrfr`` command."""

from lrfr.cli import main

raise SystemExit(main())
