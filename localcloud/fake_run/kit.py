"""Pieces every part of the fake Cloud Run shares: names, conditions, paging, records, the background clock."""
from __future__ import annotations

import base64
import hashlib
import heapq
import itertools
import logging
import random
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Sequence

import grpc
from google.cloud import run_v2

from localcloud.grpc_kit import Abort

_log = logging.getLogger(__name__)

SERVICE_URL_PREFIX = "/s/"
TAG_URL_PREFIX = "/t/"
TAG_SEPARATOR = "---"  # as in https://TAG---SERVICE-HASH.REGION.run.app

_LATEST = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST
_REVISION = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION
_SUCCEEDED = run_v2.Condition.State.CONDITION_SUCCEEDED
_RECONCILING = run_v2.Condition.State.CONDITION_RECONCILING
_FAILED = run_v2.Condition.State.CONDITION_FAILED
_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_MAX_NAME = 63
_DEFAULT_PAGE = 100
_FAILED_EXECUTION_CODE = grpc.StatusCode.FAILED_PRECONDITION  # not verified against the real API: see the report


@dataclass(frozen=True)
class Route:
    """Where one request to a service or tag URL goes. `revision` is "" when the service has nothing to serve."""

    service: str
    revision: str
    image: str
    via_tag: bool
    path: str  # the rest of the URL path, below the service URL; always starts with "/"


# -- small pure pieces -------------------------------------------------------------------------------------------
def _now() -> datetime:
    return datetime.now(timezone.utc)


def _clone(message: Any) -> Any:
    return type(message).deserialize(type(message).serialize(message))


def _condition(kind: str, state: run_v2.Condition.State, message: str = "", **reason: Any) -> run_v2.Condition:
    return run_v2.Condition(type_=kind, state=state, message=message, last_transition_time=_now(), **reason)


def _short(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def _check_name(name: str, what: str) -> None:
    if not _NAME.match(name) or len(name) > _MAX_NAME:
        raise Abort(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"{what}: expected lower-case letters, digits and hyphens, starting with a letter, at most {_MAX_NAME} "
            f"characters, found {name!r}",
        )


def _page(items: Sequence[Any], page_size: int, page_token: str, query: str) -> tuple[list[Any], str]:
    """Offset paging with an opaque token bound to the query, so a token from another listing is refused."""
    offset = 0
    if page_token:
        try:
            kind, _, number = base64.urlsafe_b64decode(page_token.encode()).decode().rpartition("|")
            offset = int(number)
        except (ValueError, UnicodeDecodeError) as error:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"page_token: not a token this API gave ({error})") from error
        if kind != query or offset < 0:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, "page_token: it belongs to another listing")
    size = page_size if page_size > 0 else _DEFAULT_PAGE
    chunk = list(items[offset : offset + size])
    following = offset + size
    token = base64.urlsafe_b64encode(f"{query}|{following}".encode()).decode() if following < len(items) else ""
    return chunk, token


def _project_number(project: str) -> int:
    return int(hashlib.sha256(project.encode()).hexdigest()[:11], 16) % 10**12


def _random_suffix(rng: random.Random, length: int, alphabet: str) -> str:
    return "".join(rng.choice(alphabet) for _ in range(length))


# -- the background clock --------------------------------------------------------------------------------------------
class _Clockwork:
    """One daemon thread running callbacks when they fall due: the simulated cloud work behind operations.

    One thread rather than a timer per operation so shutdown is one join and callbacks run in due order.
    """

    def __init__(self) -> None:
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._counter = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def after(self, seconds: float, callback: Callable[[], None]) -> None:
        with self._wake:
            if self._closed:
                return
            heapq.heappush(self._queue, (time.monotonic() + seconds, next(self._counter), callback))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="fake-run-clockwork", daemon=True)
                self._thread.start()
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._closed and (not self._queue or self._queue[0][0] > time.monotonic()):
                    timeout = self._queue[0][0] - time.monotonic() if self._queue else None
                    self._wake.wait(timeout)
                if self._closed:
                    return
                _, _, callback = heapq.heappop(self._queue)
            try:
                callback()
            except Exception:  # noqa: BLE001 - one broken callback must not stop every later operation
                _log.exception("simulated Cloud Run work failed")

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._queue.clear()
            self._wake.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)


# -- state -----------------------------------------------------------------------------------------------------------
@dataclass
class _Reconciliation:
    """An UpdateService/CreateService operation waiting for its simulated work."""

    operation: str
    generation: int
    revision: str | None  # short name of the revision this update created, if any
    due: bool = False


@dataclass
class _ServiceRecord:
    service: run_v2.Service  # spec and status; the URL fields are filled when read
    revisions: dict[str, run_v2.Revision] = field(default_factory=dict)  # creation order
    ready: set[str] = field(default_factory=set)
    created_count: int = 0  # revisions ever made, for generated names
    pending: list[_Reconciliation] = field(default_factory=list)
    version: int = 0  # bumped on every change, for the etag


@dataclass
class _JobRecord:
    job: run_v2.Job
    executions: dict[str, run_v2.Execution] = field(default_factory=dict)  # creation order
    version: int = 0


# fields a caller sets on a Service (everything else is output only)
_SERVICE_SPEC_FIELDS = (
    "description", "labels", "annotations", "client", "client_version", "ingress", "launch_stage",
    "binary_authorization", "template", "traffic", "scaling", "invoker_iam_disabled", "default_uri_disabled",
    "custom_audiences",
)
_JOB_SPEC_FIELDS = ("labels", "annotations", "client", "client_version", "launch_stage", "binary_authorization", "template")

