"""The errors Sprava raises, cut by what the caller can do about them.

::

    SpravaError                    root; every error has a kebab-case ``code``,
    │                              a ``message`` a user can act on, an optional ``hint``
    ├── BadInputError              the input is wrong; fix it and try again
    │   └── TooLargeError          the input is over a size limit
    ├── NotFoundError              the thing named does not exist
    ├── ConflictError              the request clashes with what is stored
    ├── AuthenticationError        not logged in, or the credentials are wrong
    │   └── TooManyAttemptsError   too many failed logins: wait, then try again
    ├── PermissionDeniedError      logged in, but this role may not do that
    │   └── ReviewNotPermittedError  the account has no review rights
    ├── ConfigurationError         the instance or its settings are unusable
    ├── IntegrityError             tampering or corruption; never retried, always reported
    └── BackendUnavailableError    a database or store could not be reached; retryable

``http_status`` is carried by the class so that an HTTP layer maps errors without a
table of its own.
"""

from __future__ import annotations


class SpravaError(Exception):
    """Root of every error Sprava raises on purpose."""

    http_status: int = 500
    default_code: str = "sprava-error"

    def __init__(self, message: str, *, code: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.code = code or self.default_code
        self.message = message
        self.hint = hint

    def to_dict(self) -> dict[str, str]:
        """The one error shape used in ``--json`` output and API responses."""
        shape = {"code": self.code, "message": self.message}
        if self.hint:
            shape["hint"] = self.hint
        return shape

    def __str__(self) -> str:
        return f"{self.message} (hint: {self.hint})" if self.hint else self.message


class BadInputError(SpravaError):
    """The input is malformed, unreadable or of a kind Sprava refuses."""

    http_status = 422
    default_code = "bad-input"


class TooLargeError(BadInputError):
    """An upload or request body is over its configured limit; nothing was stored."""

    http_status = 413
    default_code = "too-large"


class NotFoundError(SpravaError):
    """An item, leaf, checkpoint or instance named by the caller does not exist."""

    http_status = 404
    default_code = "not-found"


class ConflictError(SpravaError):
    """The request clashes with stored state (an ambiguous prefix, an existing key)."""

    http_status = 409
    default_code = "conflict"


class AuthenticationError(SpravaError):
    """No valid session or token, or a wrong user name, password or second factor.

    The message never says which of the credentials was wrong.
    """

    http_status = 401
    default_code = "not-authenticated"


class TooManyAttemptsError(AuthenticationError):
    """Logins for this account or from this address are paused after repeated failures."""

    http_status = 429
    default_code = "too-many-attempts"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None,
                 hint: str | None = None):
        super().__init__(message, code=code, hint=hint)
        self.retry_after = retry_after


class PermissionDeniedError(SpravaError):
    """The caller is known but their role does not allow this."""

    http_status = 403
    default_code = "forbidden"


class ReviewNotPermittedError(PermissionDeniedError):
    """The actor has no review rights."""

    default_code = "no-review-rights"


class ConfigurationError(SpravaError):
    """The instance folder, key file or settings cannot be used as they are."""

    http_status = 500
    default_code = "configuration"


class IntegrityError(SpravaError):
    """Stored evidence or the ledger does not match what was recorded.

    Raised on tampering or corruption. Callers must never retry or repair silently:
    the failure is itself evidence and has to be reported.
    """

    http_status = 500
    default_code = "integrity"


class BackendUnavailableError(SpravaError):
    """A database or blob store could not be reached; the operation may be retried."""

    http_status = 503
    default_code = "backend-unavailable"
