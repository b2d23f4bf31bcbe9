"""Reading the submission form (``multipart/form-data``) as it arrives, into an Intake.

The usual form readers spool uploaded files to temporary files: plaintext on disk. This
one hands each piece of a part to the :class:`~sprava.inbox.intake.Intake`, which
encrypts it at once. The parser is python-multipart's streaming one; everything around
it treats the body as hostile: only the form's own fields are accepted, small fields and
part headers are capped, the whole body is counted against the limit as it arrives, and
the CSRF token (where one is expected) must come before any content part.
"""

from __future__ import annotations

from collections.abc import Callable

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser

from sprava.errors import BadInputError, TooLargeError
from sprava.inbox.intake import Intake
from sprava.web.multipart import PartHeaders, boundary_of

SMALL_FIELDS = frozenset({"csrf", "lang"})
STREAMED_FIELDS = {"message": "message", "files": "file"}
_SMALL_MAX = 256
_MAX_PARTS = 64


class FormReader:
    """Feed the body with :meth:`feed`, then :meth:`close`; small fields land in
    :attr:`fields`, content parts in the intake. ``check_csrf`` is called with the
    ``csrf`` field before the first content part (it raises if the token is wrong)."""

    def __init__(self, content_type: str, intake: Intake, *, limit: int,
                 check_csrf: Callable[[str | None], None] | None = None) -> None:
        boundary = boundary_of(content_type)
        self.intake = intake
        self.limit = limit
        self.fields: dict[str, str] = {}
        self.received = 0
        self._check_csrf = check_csrf
        self._csrf_checked = check_csrf is None
        self._part = PartHeaders()
        self._current: str | None = None
        self._small = bytearray()
        self._parts = 0
        self._ended = False
        self._parser = MultipartParser(boundary, {
            "on_part_begin": self._part_begin,
            "on_header_field": self._part.field,
            "on_header_value": self._part.value,
            "on_header_end": self._part.end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }, max_header_count=8, max_header_size=4096)

    def feed(self, data: bytes) -> None:
        self.received += len(data)
        if self.received > self.limit:
            raise TooLargeError(f"the submission is over the limit of "
                                f"{self.limit // (1024 * 1024)} MiB", code="too-large",
                                hint="send large material in several posts")
        try:
            self._parser.write(data)
        except FormParserError:
            raise BadInputError("the form could not be read", code="bad-form") from None

    def close(self) -> None:
        try:
            self._parser.finalize()
        except FormParserError:
            raise BadInputError("the form could not be read", code="bad-form") from None
        if not self._ended:
            raise BadInputError("the form ended early; nothing was kept", code="bad-form",
                                hint="the connection may have been cut: send it again")

    # --- parser callbacks -------------------------------------------------------------

    def _part_begin(self) -> None:
        self._parts += 1
        if self._parts > _MAX_PARTS:
            raise BadInputError("the form has too many parts", code="bad-form")
        self._part.reset()

    def _headers_finished(self) -> None:
        name, filename = self._part.name_and_filename()
        if name in SMALL_FIELDS:
            if name in self.fields:
                raise BadInputError(f"the form repeats the field {name}", code="bad-form")
            self._current, self._small = name, bytearray()
            return
        if name not in STREAMED_FIELDS:
            raise BadInputError("the form holds a field it does not have",
                                code="unknown-field")
        if not self._csrf_checked:
            assert self._check_csrf is not None
            self._check_csrf(self.fields.get("csrf"))
            self._csrf_checked = True
        self._current = name
        self.intake.begin(STREAMED_FIELDS[name],
                          filename.decode("utf-8", "replace") if filename is not None
                          else ("file" if name == "files" else None))

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._current in SMALL_FIELDS:
            self._small += data[start:end]
            if len(self._small) > _SMALL_MAX:
                raise BadInputError("a form field is too long", code="bad-form")
        elif self._current is not None:
            self.intake.feed(memoryview(data)[start:end])

    def _part_end(self) -> None:
        if self._current in SMALL_FIELDS:
            self.fields[self._current] = self._small.decode("utf-8", "replace")
        elif self._current is not None:
            self.intake.end()
        self._current = None

    def _end(self) -> None:
        self._ended = True
