"""``python -m lakeio``: the ``lakeio`` command."""

from lakeio.cli import main

main()
