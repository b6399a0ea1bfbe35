"""``python -m pglog``: the same CLI as the ``pglog`` command."""

from pglog.cli import main

raise SystemExit(main())
