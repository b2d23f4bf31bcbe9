"""What every streaming reader of a ``multipart/form-data`` body shares.

python-multipart's push parser hands a part's headers over in pieces; both the insider
inbox (which encrypts each part as it arrives) and the team's upload page (which streams
each file into the vault) need them gathered and the part's name checked the same way,
before they do their own thing with its bytes.
"""

from __future__ import annotations

from python_multipart.multipart import parse_options_header

from sprava.errors import BadInputError

MAX_BOUNDARY = 200


def boundary_of(content_type: str) -> bytes:
    """The boundary of a ``multipart/form-data`` body; BadInputError for anything else."""
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary or len(boundary) > MAX_BOUNDARY:
        raise BadInputError("send the form as multipart/form-data", code="bad-form")
    return bytes(boundary)


class PartHeaders:
    """The headers of the part being read; give its methods to the parser as
    ``on_header_field``, ``on_header_value`` and ``on_header_end``, call :meth:`reset` at
    each part's beginning and :meth:`name_and_filename` once its headers are finished."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._headers: list[tuple[bytes, bytes]] = []
        self._field = self._value = b""

    def field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def end(self) -> None:
        self._headers.append((self._field.lower(), self._value))
        self._field = self._value = b""

    def name_and_filename(self) -> tuple[str, bytes | None]:
        """The form field's name and the file name the browser sent (None for a field
        that is not a file); BadInputError for a part that is not a named form field."""
        disposition = dict(self._headers).get(b"content-disposition", b"")
        kind, options = parse_options_header(disposition.decode("latin-1"))
        name = options.get(b"name", b"").decode("latin-1")
        if kind != b"form-data" or not name:
            raise BadInputError("the form has a part without a name", code="bad-form")
        filename = options.get(b"filename")
        return name, None if filename is None else bytes(filename)
