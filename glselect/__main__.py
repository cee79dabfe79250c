"""``python -m glselect``: the command line, also as ``torchrun -m glselect fit ...``."""

from glselect.cli.app import app

app()
