"""The command line. ``main`` is the ``glselect`` script and ``python -m glselect``."""


def main() -> None:
    """Run the command line, with Ctrl-C during start-up as one line and exit 130 (see ``interrupt``).

    The handler goes in before typer, rich or glselect's commands are imported: on a busy
    machine that alone takes a second or more.
    """
    from glselect.cli.interrupt import exit_at_once_on_ctrl_c

    exit_at_once_on_ctrl_c()
    from glselect.cli.allocators import use_lean_allocators

    use_lean_allocators()
    from glselect.cli.openmp import wait_passively_when_busy

    wait_passively_when_busy()
    from glselect.cli.app import app

    app()
