"""The time an invocation has left before the platform ends it.

Cloud Functions (2nd gen) ends an event-driven function at its timeout, at most 540 s, whatever it was doing; work
cut off there is neither finished nor recorded. Each invocation therefore runs `within` a deadline a margin short
of that timeout, and every wait on the cloud (a long-running operation, a poll) is bounded by what is `left` of it,
so a slow operation makes the invocation hand over rather than be killed.
"""
from __future__ import annotations

import os
import time
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

FUNCTION_TIMEOUT_SECONDS = 540.0  # Cloud Functions' longest timeout for an event-driven function; setup deploys it
MARGIN_SECONDS = 30.0  # kept for recording what was done and answering
TIMEOUT_ENV = "TAGSHIP_FUNCTION_TIMEOUT_SECONDS"  # the local cloud runs with shorter timeouts

_deadline: ContextVar[float | None] = ContextVar("tagship_deadline", default=None)


def function_timeout() -> float:
    """The function's timeout: FUNCTION_TIMEOUT_SECONDS, or a shorter one from the environment."""
    try:
        seconds = float(os.environ.get(TIMEOUT_ENV, "") or FUNCTION_TIMEOUT_SECONDS)
    except ValueError:
        return FUNCTION_TIMEOUT_SECONDS
    return seconds if 0 < seconds <= FUNCTION_TIMEOUT_SECONDS else FUNCTION_TIMEOUT_SECONDS


def usable(timeout: float, margin: float = MARGIN_SECONDS) -> float:
    """How long an invocation may work under a function timeout of `timeout`: the margin, or a tenth of a short
    timeout, is kept for the end."""
    return max(timeout - min(margin, timeout / 10), 0.0)


@contextmanager
def within(seconds: float) -> Iterator[None]:
    token = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def left(longest: float) -> float:
    """`longest`, or what is left of the invocation's deadline when that is shorter (never below zero)."""
    deadline = _deadline.get()
    if deadline is None:
        return longest
    return max(0.0, min(longest, deadline - time.monotonic()))
