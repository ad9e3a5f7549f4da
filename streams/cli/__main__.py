"""``python -m streams.cli``: the same as the ``metastream`` console script."""

from streams.cli import main

main()
