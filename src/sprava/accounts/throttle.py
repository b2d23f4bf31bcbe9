"""Login throttling, kept in the database so that every server process shares it.

Two counters are kept for each attempt: one for the account name and one for the
client address. After ``login_max_failures`` failures within :data:`WINDOW`, logins on
that counter are paused for a minute; each further failure doubles the pause, up to
an hour. A successful login clears the account's counter (not the address's, so that
one known password does not unlock guessing at others from the same address).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError as DBIntegrityError

from sprava.backends.db.account_tables import login_throttle
from sprava.errors import TooManyAttemptsError

WINDOW = timedelta(minutes=15)
FIRST_PAUSE = 60
LONGEST_PAUSE = 3600


def keys(username: str, address: str | None) -> list[str]:
    out = [f"account:{username.casefold()[:150]}"]
    if address:
        out.append(f"address:{address[:150]}")
    return out


def check(conn: Connection, names: list[str], now: datetime | None = None) -> None:
    """Raise TooManyAttemptsError if any of these counters is paused."""
    moment = now or datetime.now(UTC)
    rows = conn.execute(select(login_throttle.c.locked_until)
                        .where(login_throttle.c.key.in_(names))).scalars()
    until = max((r for r in rows if r is not None and r > moment), default=None)
    if until is not None:
        wait = max(1, int((until - moment).total_seconds() + 0.999))
        raise TooManyAttemptsError(
            "too many failed logins; logins are paused for a while",
            retry_after=wait, hint=f"try again in {wait} seconds")


def failed(conn: Connection, names: list[str], limit: int,
           now: datetime | None = None) -> None:
    """Count one failure on each counter, pausing those that reach ``limit``."""
    moment = now or datetime.now(UTC)
    for name in names:
        row = conn.execute(select(login_throttle).where(login_throttle.c.key == name)).first()
        if row is None:
            try:
                with conn.begin_nested():
                    conn.execute(insert(login_throttle).values(
                        key=name, failures=0, window_start=moment, locked_until=None))
            except DBIntegrityError:
                pass  # another process made it first: count on its row
            row = conn.execute(select(login_throttle)
                               .where(login_throttle.c.key == name)).one()
        failures, start = row.failures, row.window_start
        if moment - start > WINDOW and (row.locked_until is None or row.locked_until < moment):
            failures, start = 0, moment
        failures += 1
        locked = None
        if failures >= limit:
            pause = min(LONGEST_PAUSE, FIRST_PAUSE * 2 ** min(failures - limit, 12))
            locked = moment + timedelta(seconds=pause)
        conn.execute(update(login_throttle).where(login_throttle.c.key == name)
                     .values(failures=failures, window_start=start, locked_until=locked))


def succeeded(conn: Connection, username: str) -> None:
    conn.execute(delete(login_throttle).where(login_throttle.c.key == keys(username, None)[0]))
