"""``python -m sprava`` runs the command line."""

from sprava.cli import main

main()
