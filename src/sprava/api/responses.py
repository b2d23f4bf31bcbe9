"""JSON responses that cannot be mistaken for markup, and the one error shape."""

from __future__ import annotations

import json
from typing import Any

from fastapi.responses import JSONResponse

from sprava.errors import AuthenticationError, SpravaError, TooManyAttemptsError

# Applied with str.replace, not str.translate: translate looks each character up in a
# dict once the text holds anything but ASCII (Cyrillic titles), 30 times slower on a page
# of incidents (bench/api_load.py).
_ESCAPES = (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
            ("\u2028", "\\u2028"), ("\u2029", "\\u2029"))


class SafeJSONResponse(JSONResponse):
    """JSON with ``<``, ``>``, ``&`` (and the JavaScript line separators) as \\u escapes.

    The values are unchanged for any JSON reader, but text such as ``<script>`` stored
    in a title never appears as such in a response body.
    """

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False,
                          separators=(",", ":"))
        for char, escape in _ESCAPES:
            if char in text:
                text = text.replace(char, escape)
        return text.encode("utf-8")


def error_body(code: str, message: str, hint: str | None = None) -> dict[str, Any]:
    shape = {"code": code, "message": message}
    if hint:
        shape["hint"] = hint
    return {"error": shape}


def error_response(exc: SpravaError) -> SafeJSONResponse:
    headers: dict[str, str] = {}
    if isinstance(exc, TooManyAttemptsError):
        headers["Retry-After"] = str(exc.retry_after)
    elif isinstance(exc, AuthenticationError):
        headers["WWW-Authenticate"] = 'Bearer realm="sprava"'
    return SafeJSONResponse(error_body(exc.code, exc.message, exc.hint),
                            status_code=exc.http_status, headers=headers)
