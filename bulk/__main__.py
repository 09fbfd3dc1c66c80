"""``python -m bulk`` runs the command line."""

from bulk.cli import main

main()
