"""Printing for people (Rich) and for programs (``--json``), and errors for both."""

from __future__ import annotations

import json
import sys
from typing import Any

from sprava.cli.exitcode import ExitCode
from sprava.errors import (
    BackendUnavailableError,
    BadInputError,
    ConfigurationError,
    ConflictError,
    IntegrityError,
    NotFoundError,
    SpravaError,
)


def emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, sort_keys=False) + "\n")
    sys.stdout.flush()


def console(stderr: bool = False) -> Any:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # Piped output keeps whole lines rather than Rich's 80-column default.
    width = None if stream.isatty() else 160
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=width)


def print_error(error: SpravaError) -> None:
    from rich.markup import escape

    out = console(stderr=True)
    out.print(f"[bold red]error[/] {escape(f'[{error.code}]')}: {escape(error.message)}")
    if error.hint:
        out.print(f"[dim]hint:[/] {escape(error.hint)}")


def exit_for_error(exc: BaseException) -> int:
    """Report ``exc`` and choose the exit code; a bug is reported without internals leaking."""
    if not isinstance(exc, SpravaError):
        import traceback

        traceback.print_exc()
        print("error [internal]: an unexpected error; the traceback above says where",
              file=sys.stderr)
        return ExitCode.FAILED
    print_error(exc)
    if isinstance(exc, NotFoundError):
        return ExitCode.NOT_FOUND
    if isinstance(exc, BadInputError | ConflictError):
        return ExitCode.USAGE
    if isinstance(exc, ConfigurationError | BackendUnavailableError):
        return ExitCode.UNUSABLE
    if isinstance(exc, IntegrityError):
        return ExitCode.FAILED
    return ExitCode.FAILED


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"
