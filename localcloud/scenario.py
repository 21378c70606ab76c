"""What the local cloud is told to do: app behaviour per commit, latency per operation, injected faults.

Shared by every fake. Thread-safe: the gRPC server, the router and the tests touch it from many threads.
"""
from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field

APP_BEHAVIOURS = ("healthy", "unhealthy", "degrading", "errors", "host-bound")  # host-bound: ALLOWED_HOSTS names the main URL only
OUTCOMES = ("ok", "fail")


@dataclass(frozen=True)
class AppBehaviour:
    """How the sample app built from one commit behaves, and how its build and migration end."""

    app: str = "healthy"
    degrade_after: float = 0.0
    error_ratio: float = 0.0
    build: str = "ok"
    migration: str = "ok"

    def __post_init__(self) -> None:
        if self.app not in APP_BEHAVIOURS:
            raise ValueError(f"app must be one of {APP_BEHAVIOURS}, got {self.app!r}")
        if self.build not in OUTCOMES or self.migration not in OUTCOMES:
            raise ValueError(f"build and migration must be one of {OUTCOMES}")
        if not 0.0 <= self.error_ratio <= 1.0:
            raise ValueError(f"error_ratio must be within 0..1, got {self.error_ratio}")


def digest_for_commit(commit: str) -> str:
    """The image digest the fake Cloud Build reports for a commit (deterministic, so fakes agree)."""
    return "sha256:" + hashlib.sha256(commit.encode()).hexdigest()


@dataclass
class Fault:
    code: str  # a grpc.StatusCode name such as "UNAVAILABLE", or an HTTP status as text for HTTP fakes
    remaining: int  # how many calls still fail; -1 means until cleared
    after_effect: bool = False  # the call does its work, then the answer is lost (a crash before the record)


@dataclass
class Scenario:
    """The knobs. `latency` maps an operation name to seconds of simulated cloud work.

    Operation names used by the fakes: "build" (whole build), "migration" (a job execution),
    "revision_ready" (a new revision becoming ready), "traffic" (a traffic update), "rpc" (every gRPC call).
    """

    latency: dict[str, float] = field(default_factory=dict)
    _commits: dict[str, AppBehaviour] = field(default_factory=dict)
    _faults: dict[str, Fault] = field(default_factory=dict)
    faults_fired: list[tuple[str, str, bool]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def set_commit(self, commit: str, behaviour: AppBehaviour) -> None:
        with self._lock:
            self._commits[commit] = behaviour

    def behaviour_for_commit(self, commit: str) -> AppBehaviour:
        with self._lock:
            return self._commits.get(commit, AppBehaviour())

    def behaviour_for_image(self, image: str) -> AppBehaviour:
        """Looks an image reference (`...@sha256:...`) up by the digest the fake build gave its commit."""
        with self._lock:
            for commit, behaviour in self._commits.items():
                if digest_for_commit(commit) in image:
                    return behaviour
        return AppBehaviour()

    def delay(self, operation: str) -> float:
        return self.latency.get(operation, 0.0)

    def sleep(self, operation: str) -> None:
        seconds = self.delay(operation)
        if seconds > 0:
            time.sleep(seconds)

    def inject_fault(self, method: str, code: str, times: int = 1, *, after_effect: bool = False) -> None:
        """Makes the next `times` calls of `method` (e.g. "google.cloud.run.v2.Services/UpdateService",
        "slack/chat.postMessage") fail with `code`; times=-1 fails until `clear_fault`. With `after_effect` the
        call takes effect first and only its answer fails: the caller crashed between effect and record."""
        with self._lock:
            self._faults[method] = Fault(code, times, after_effect)

    def clear_fault(self, method: str) -> None:
        with self._lock:
            self._faults.pop(method, None)

    def take_fault(self, method: str) -> str | None:
        """The code this call must fail with before doing anything, if such a fault is armed (consumes one)."""
        return self._take(method, after_effect=False)

    def take_fault_after_effect(self, method: str) -> str | None:
        """The code this call must fail with after doing its work, if such a fault is armed (consumes one)."""
        return self._take(method, after_effect=True)

    def _take(self, method: str, *, after_effect: bool) -> str | None:
        with self._lock:
            fault = self._faults.get(method)
            if fault is None or fault.after_effect != after_effect:
                return None
            if fault.remaining > 0:
                fault.remaining -= 1
                if fault.remaining == 0:
                    del self._faults[method]
            self.faults_fired.append((method, fault.code, after_effect))
            return fault.code
