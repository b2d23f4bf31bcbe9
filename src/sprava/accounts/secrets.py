"""Passwords (Argon2id), one-time passwords, bearer tokens and TOTP codes.

Argon2id with argon2-cffi's defaults (RFC 9106's second recommended option: 64 MiB,
3 passes, 4 lanes) unless the instance's settings ``password_kdf_memory_mb`` and
``password_kdf_passes`` say otherwise (:class:`PasswordCost`; the test suite lowers them, as
it lowers the inbox's); a hash made with other parameters is re-hashed at the next login.
Tokens are 256 random bits; only their SHA-256 is stored. TOTP is RFC 6238 (SHA-1,
30 s, 6 digits, one step of clock drift either way), as every authenticator app reads
it; a code is accepted once only.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from sprava.errors import BadInputError

if TYPE_CHECKING:
    from sprava.settings import Settings

MIN_PASSWORD = 12
MAX_PASSWORD = 1024  # Argon2 takes any length; a cap keeps a login request cheap


@dataclass(frozen=True)
class PasswordCost:
    """Argon2id's memory (MiB) and passes for new password hashes; 4 lanes always."""

    memory_mb: int = 64
    passes: int = 3

    @classmethod
    def of(cls, settings: Settings) -> PasswordCost:
        """The cost an instance's settings ask for."""
        return cls(settings.password_kdf_memory_mb, settings.password_kdf_passes)


DEFAULT_COST = PasswordCost()


@functools.cache
def _hasher(cost: PasswordCost) -> PasswordHasher:
    return PasswordHasher(time_cost=cost.passes, memory_cost=cost.memory_mb * 1024)


@functools.cache
def _dummy(cost: PasswordCost) -> str:
    """A hash to verify against when the user name is unknown, so that a wrong name costs
    the same time as a wrong password and names cannot be told apart by timing."""
    return _hasher(cost).hash(secrets.token_urlsafe(16))


def check_password_policy(password: object) -> str:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise BadInputError(
            f"a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters",
            code="weak-password", hint="a passphrase of four or more words is easy to type")
    if password.strip() != password or len(set(password)) < 5:
        raise BadInputError("this password is too easy to guess", code="weak-password",
                            hint="use a passphrase of four or more unrelated words")
    return password


def hash_password(password: str, cost: PasswordCost = DEFAULT_COST) -> str:
    return _hasher(cost).hash(check_password_policy(password))


def hash_generated(password: str, cost: PasswordCost = DEFAULT_COST) -> str:
    """Hash a password Sprava generated itself (no policy check needed)."""
    return _hasher(cost).hash(password)


def verify_password(stored: str | None, password: str,
                    cost: PasswordCost = DEFAULT_COST) -> bool:
    """True if ``password`` matches; always spends one Argon2 verification (at the cost
    ``stored`` was made with, or at ``cost`` when there is no stored hash)."""
    if not isinstance(password, str) or len(password) > MAX_PASSWORD:
        password = ""
    dummy = _dummy(cost)  # made at the first check at this cost, whoever is checked
    try:
        return _hasher(cost).verify(stored or dummy, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str, cost: PasswordCost = DEFAULT_COST) -> bool:
    return _hasher(cost).check_needs_rehash(stored)


def one_time_password() -> str:
    """A generated password to hand over once (first start, a reset): 20 characters."""
    return secrets.token_urlsafe(15)


def new_token(prefix: str) -> tuple[str, str]:
    """A bearer token and the SHA-256 that is stored in its place."""
    token = f"{prefix}_{secrets.token_urlsafe(32)}"
    return token, token_digest(token)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(secret: str, username: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)


def totp_step(secret: str, code: object, *, last_step: int | None,
              now: float | None = None) -> int | None:
    """The time step ``code`` is valid for (±1 step), if it is valid and newer than
    ``last_step``; None otherwise. Storing the step makes every code single-use."""
    if not isinstance(code, str) or not code.isdigit() or len(code) != 6:
        return None
    moment = time.time() if now is None else now
    totp = pyotp.TOTP(secret)
    current = int(moment // totp.interval)
    for step in (current - 1, current, current + 1):
        if (last_step is None or step > last_step) and hmac.compare_digest(
                totp.generate_otp(step), code):
            return step
    return None
