"""Slack's rate limits: a burst is answered HTTP 429 with `Retry-After` (about one message a second per channel,
https://api.slack.com/apis/rate-limits). `budgeted_rate_limit_handler` waits that long only when the wait fits in
what is left of the call's timeout (`call_budget`); otherwise the call gives up at once."""
from __future__ import annotations

import functools
import time
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Callable, Iterator, Mapping

DEFAULT_RETRY_AFTER = 1.0
RATE_LIMIT_RETRIES = 2

_call_deadline: ContextVar[float | None] = ContextVar("tagship_slack_call_deadline", default=None)


def retry_after_seconds(headers: Mapping[str, Any]) -> float:
    """The wait a 429 asks for: its `Retry-After` in seconds (header name in any case, value a string or a list of
    one), never negative; `DEFAULT_RETRY_AFTER` when absent or not a number."""
    for name, value in headers.items():
        if name.lower() != "retry-after":
            continue
        first = value[0] if isinstance(value, (list, tuple)) and value else value
        try:
            return max(0.0, float(str(first).strip()))
        except ValueError:
            return DEFAULT_RETRY_AFTER
    return DEFAULT_RETRY_AFTER


@contextmanager
def call_budget(seconds: float, clock: Callable[[], float] = time.monotonic) -> Iterator[None]:
    """Within this block, a `budgeted_rate_limit_handler` counts its waits against `seconds` from now (per thread and
    per context, so concurrent calls on one shared client keep their own budgets)."""
    token = _call_deadline.set(clock() + seconds)
    try:
        yield
    finally:
        _call_deadline.reset(token)


def budgeted_rate_limit_handler(
    budget_seconds: float,
    max_retry_count: int = RATE_LIMIT_RETRIES,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """A slack_sdk retry handler (a `RateLimitErrorRetryHandler`) that retries a 429 after its `Retry-After`, at
    most `max_retry_count` times, and only when the wait ends within the call's budget: the deadline `call_budget`
    set, or else `budget_seconds` from the first answer it sees. A wait that does not fit is never started: the
    client then returns the 429 at once (WebClient raises it as `SlackApiError`, WebhookClient returns it). Its
    waits within one call add up to at most the budget. slack_sdk is imported on first use only."""
    return _handler_class()(budget_seconds, max_retry_count, clock=clock, sleep=sleep)


@functools.lru_cache(maxsize=None)
def _handler_class() -> type:
    from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
    from slack_sdk.http_retry.request import HttpRequest
    from slack_sdk.http_retry.response import HttpResponse
    from slack_sdk.http_retry.state import RetryState

    class BudgetedRateLimitHandler(RateLimitErrorRetryHandler):
        """See `budgeted_rate_limit_handler`."""

        def __init__(self, budget_seconds: float, max_retry_count: int, *, clock: Callable[[], float],
                     sleep: Callable[[float], None]) -> None:
            super().__init__(max_retry_count=max_retry_count)
            self.budget_seconds = budget_seconds
            self._clock = clock
            self._sleep = sleep

        def _remaining(self, state: RetryState) -> float:
            deadline = _call_deadline.get()
            if deadline is None:
                if state.custom_values is None:
                    state.custom_values = {}
                deadline = state.custom_values.setdefault("tagship_deadline", self._clock() + self.budget_seconds)
            return float(deadline) - self._clock()

        def _can_retry(self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
                       error: Exception | None = None) -> bool:
            if response is None or response.status_code != 429:
                return False
            return retry_after_seconds(response.headers) <= self._remaining(state)

        def prepare_for_next_attempt(self, *, state: RetryState, request: HttpRequest,
                                     response: HttpResponse | None = None, error: Exception | None = None) -> None:
            state.next_attempt_requested = True
            wait = retry_after_seconds(response.headers) if response is not None else DEFAULT_RETRY_AFTER
            self._sleep(min(wait, max(0.0, self._remaining(state))))
            state.increment_current_attempt()

    return BudgetedRateLimitHandler


# -- what to do about an error ----------------------------------------------------------------------------------------
