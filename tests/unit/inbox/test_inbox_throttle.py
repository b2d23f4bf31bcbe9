"""Guess throttling: per submission and global, in memory, on a clock the test moves."""

from __future__ import annotations

import pytest

from sprava.errors import TooManyAttemptsError
from sprava.inbox.throttle import HOUR, MINUTE, GuessThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_submission_refuses_codes_for_an_hour_after_its_limit() -> None:
    clock = Clock()
    throttle = GuessThrottle(per_submission=3, per_minute=1000, clock=clock)
    for _ in range(2):
        throttle.failed("s1")
    assert not throttle.locked("s1")
    throttle.failed("s1")
    assert throttle.locked("s1")
    assert not throttle.locked("s2")
    throttle.succeeded("s1")  # a right code during the lock changes nothing
    assert throttle.locked("s1")
    clock.now += HOUR + 1
    assert not throttle.locked("s1")
    throttle.failed("s1")
    assert not throttle.locked("s1")  # a new window


def test_failures_spread_over_more_than_an_hour_do_not_add_up() -> None:
    clock = Clock()
    throttle = GuessThrottle(per_submission=3, per_minute=1000, clock=clock)
    throttle.failed("s1")
    throttle.failed("s1")
    clock.now += HOUR + 1
    throttle.failed("s1")
    assert not throttle.locked("s1")


def test_the_whole_inbox_pauses_after_too_many_failures_in_a_minute() -> None:
    clock = Clock()
    throttle = GuessThrottle(per_submission=1000, per_minute=5, clock=clock)
    for _ in range(4):
        throttle.failed(None)
    throttle.check_global()
    throttle.failed(None)
    with pytest.raises(TooManyAttemptsError) as caught:
        throttle.check_global()
    assert caught.value.code == "inbox-paused"
    assert 1 <= caught.value.retry_after <= MINUTE
    clock.now += MINUTE
    throttle.check_global()
