"""``python -m glselect``: the command line, also as ``torchrun -m glselect fit ...``."""

from glselect.cli import main

main()
