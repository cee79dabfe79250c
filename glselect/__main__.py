"""``python -m glselect``: the command line, also as ``torchrun -m glselect fit ...``."""

from glselect.cli.interrupt import exit_at_once_on_ctrl_c

exit_at_once_on_ctrl_c()  # until a command starts, Ctrl-C is one line and exit 130 (see interrupt.py)

from glselect.cli.app import app  # noqa: E402

app()
