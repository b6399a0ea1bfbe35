"""``python -m pglog``: the same CLI as the ``pglog`` command."""

from pglog._cli import main

raise SystemExit(main())
