"""``python -m ltvcast.cli``: the same as the ``ltvcast`` console script."""

from ltvcast.cli import main

main()
