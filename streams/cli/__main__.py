"""``python -m streams.cli``: the same as the ``metastream`` console script."""

from . import main

main()
