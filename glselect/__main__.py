"""``python -m glselect``: the command line, also as ``torchrun -m glselect fit ...``."""

import sys

try:
    from glselect.cli.app import app
except KeyboardInterrupt:  # Ctrl-C while the command line itself loads: one line, no traceback
    sys.stderr.write("interrupted: nothing was written\n")
    sys.exit(130)

app()
