"""Named exit codes, the same for every command."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # some input failed, or verification found tampering
    USAGE = 2  # the command line is wrong
    UNUSABLE = 3  # the instance, database or store cannot be used or read
    NOT_FOUND = 4  # the item, leaf or checkpoint named does not exist
    INTERRUPTED = 130
