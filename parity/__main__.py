"""``python -m parity`` is the ``tailings-parity`` command."""

from parity.cli import main

raise SystemExit(main())
