"""The ``sprava`` command line. Commands import their work lazily so that start-up is fast."""

from __future__ import annotations

import sys

from sprava.cli.exitcode import ExitCode


def main(argv: list[str] | None = None) -> None:
    """Run the CLI and exit with a named exit code (see :mod:`sprava.cli.exitcode`)."""
    from sprava.cli.app import build_app

    app = build_app()
    try:
        app(args=argv, prog_name="sprava")  # exits itself: 0, usage errors 2, typer.Exit codes
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(ExitCode.INTERRUPTED)
    except Exception as exc:
        from sprava.cli.output import exit_for_error

        sys.exit(exit_for_error(exc))
