"""Throttling receipt-code guesses without knowing, or storing, who guesses.

Two counters, both in the serving process's memory only (a counter on disk would be a
record of when inbox traffic happened, which the inbox never keeps):

* **per submission**: a wrong code whose first words (its lookup identifier) hit a
  submission counts against that submission; after ``per_submission`` such failures
  within an hour the submission refuses *every* code for an hour, its own included.
  The refusal is the ordinary "wrong code" answer, so a guesser never learns that they
  found a submission's first words;
* **global**: after ``per_minute`` wrong codes within a minute over the whole inbox,
  code entry pauses until the minute is over (429). This caps the rate at which the
  whole code space can be searched, whoever searches it.

Only failures count; a pause refuses before any Argon2id work is spent, so a flood of
guesses cannot exhaust the processor either.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sprava.errors import TooManyAttemptsError

HOUR = 3600.0
MINUTE = 60.0


class GuessThrottle:
    def __init__(self, per_submission: int, per_minute: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_submission = per_submission
        self.per_minute = per_minute
        self._clock = clock
        self._lock = threading.Lock()
        self._window_start = clock()
        self._window_failures = 0
        self._paused_until = 0.0
        self._per: dict[str, tuple[float, int, float]] = {}  # start, failures, locked until

    def check_global(self) -> None:
        """Raise TooManyAttemptsError while code entry is paused for everyone."""
        with self._lock:
            now = self._clock()
            if now < self._paused_until:
                wait = max(1, int(self._paused_until - now + 0.999))
                raise TooManyAttemptsError(
                    "too many wrong receipt codes were entered here; code entry is paused "
                    "for everyone for a short while", code="inbox-paused",
                    retry_after=wait, hint=f"try again in {wait} seconds")

    def locked(self, submission_id: str) -> bool:
        with self._lock:
            entry = self._per.get(submission_id)
            return entry is not None and self._clock() < entry[2]

    def failed(self, submission_id: str | None) -> None:
        with self._lock:
            now = self._clock()
            if now - self._window_start >= MINUTE:
                self._window_start, self._window_failures = now, 0
            self._window_failures += 1
            if self._window_failures >= self.per_minute:
                self._paused_until = self._window_start + MINUTE
            if submission_id is None:
                return
            start, failures, until = self._per.get(submission_id, (now, 0, 0.0))
            if now - start >= HOUR and now >= until:
                start, failures = now, 0
            failures += 1
            if failures >= self.per_submission:
                until = now + HOUR
            self._per[submission_id] = (start, failures, until)
            if len(self._per) > 100_000:  # only submissions that exist get here; keep bounded
                self._per = {k: v for k, v in self._per.items()
                             if now - v[0] < HOUR or now < v[2]}

    def succeeded(self, submission_id: str) -> None:
        """A right code: forget earlier failures against its submission (unless locked)."""
        with self._lock:
            entry = self._per.get(submission_id)
            if entry is not None and self._clock() >= entry[2]:
                del self._per[submission_id]
