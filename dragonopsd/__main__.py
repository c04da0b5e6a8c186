"""``python -m dragonopsd``."""

from .cli import main

raise SystemExit(main())
