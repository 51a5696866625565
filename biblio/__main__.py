"""``python -m biblio``: the same CLI as the ``biblio`` console script."""

from biblio.cli import main

main()
