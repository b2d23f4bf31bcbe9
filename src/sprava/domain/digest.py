"""The SHA-256 digest as a small value type, printed as ``sha256:<hex>``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sprava.errors import BadInputError

_HEX64 = re.compile(r"[0-9a-f]{64}")
_PREFIX = "sha256:"


@dataclass(frozen=True, slots=True)
class Digest:
    """A SHA-256 digest. Its identity is the 64 lower-case hex digits."""

    hex: str

    def __post_init__(self) -> None:
        if not _HEX64.fullmatch(self.hex):
            raise BadInputError(
                f"not a SHA-256 digest: {self.hex!r}",
                code="bad-digest",
                hint="give 64 hexadecimal digits, optionally prefixed with 'sha256:'",
            )

    @classmethod
    def parse(cls, text: str) -> Digest:
        """Accept ``sha256:<hex>`` or bare hex, in either case."""
        body = text.strip().lower()
        body = body.removeprefix(_PREFIX)
        return cls(body)

    @classmethod
    def from_bytes(cls, raw: bytes) -> Digest:
        if len(raw) != 32:
            raise BadInputError(f"a SHA-256 digest has 32 bytes, got {len(raw)}", code="bad-digest")
        return cls(raw.hex())

    @property
    def raw(self) -> bytes:
        return bytes.fromhex(self.hex)

    def __str__(self) -> str:
        return _PREFIX + self.hex
