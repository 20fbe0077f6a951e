"""``python -m ssg_dmi.cli``: the same as the ``ssg-dmi`` console script."""

from __future__ import annotations

from . import main

raise SystemExit(main())
