"""``python -m audiotok`` runs the command-line interface."""

from audiotok.cli import main

if __name__ == "__main__":
    main()
