"""``python -m drgkit.cli``."""

from . import main

main()
