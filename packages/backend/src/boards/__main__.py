"""``python -m boards ...`` is the same as the ``boards`` command."""

from boards.cli import main

main()
