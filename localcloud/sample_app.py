"""The botbalance API as one Cloud Run revision runs it: health endpoints, one ordinary endpoint, CORS.

The router gives every served revision its own `SampleApp`, so state that belongs to a running revision (when it
started taking users' traffic, which is when a "degrading" release starts to rot) lives as long as the revision
serves. How the app behaves comes from the scenario for the revision's image (`AppBehaviour`), asked per request so
a test can change its mind. No I/O here: the router turns HTTP into `AppRequest` and `AppResponse` back into HTTP.

Behaviours (`localcloud.scenario.APP_BEHAVIOURS`):
- healthy: everything answers.
- unhealthy: health answers 503 (the database is unreachable) from the first request; items answer 500.
- degrading: healthy until `degrade_after` seconds after the revision first served a request through the service
  URL (users' traffic; requests through its tag URL, such as smoke tests before traffic moves, do not start the
  clock), unhealthy from then on, whichever URL is used.
- errors: health is fine, but items answer 500 with probability `error_ratio`: only metrics can tell.
"""
from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from localcloud.scenario import AppBehaviour

HEALTH_PATH = "/api/health"
DETAILED_HEALTH_PATH = "/api/health/detailed"
ITEMS_PATH = "/api/items"

_ITEMS = [
    {"id": 1, "name": "Checking", "balance": "1204.50"},
    {"id": 2, "name": "Savings", "balance": "8800.00"},
    {"id": 3, "name": "Card", "balance": "-310.12"},
]
_CORS_METHODS = "DELETE, GET, OPTIONS, PATCH, POST, PUT"  # what django-cors-headers answers by default
_CORS_HEADERS = "accept, authorization, content-type, user-agent, x-csrftoken, x-requested-with"


@dataclass(frozen=True)
class AppRequest:
    """One request as the app sees it: the path below the service URL, header names in lower case."""

    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AppResponse:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()

    def json(self) -> Any:
        return json.loads(self.body)


DJANGO_BAD_REQUEST = (b'\n<!doctype html>\n<html lang="en">\n<head>\n  <title>Bad Request (400)</title>\n</head>\n'
                      b'<body>\n  <h1>Bad Request (400)</h1><p></p>\n</body>\n</html>\n')


def _json(status: int, payload: Any, headers: tuple[tuple[str, str], ...] = ()) -> AppResponse:
    return AppResponse(status, json.dumps(payload).encode(), (("Content-Type", "application/json"), *headers))


class SampleApp:
    """One revision's running app. Thread-safe: the router serves many requests at once."""

    def __init__(
        self,
        *,
        service: str,
        revision: str,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.service = service
        self.revision = revision
        self._rng = rng or random.Random(f"{service}/{revision}")
        self._clock = clock
        self._lock = threading.Lock()
        self._serving_since: float | None = None

    @property
    def serving_since(self) -> float | None:
        """When (on the app's clock) it first served a request through the service URL; None if never."""
        with self._lock:
            return self._serving_since

    def failing_component(self, behaviour: AppBehaviour) -> str | None:
        """What the detailed health check reports broken right now, or None when all is well."""
        if behaviour.app == "unhealthy":
            return "db"
        if behaviour.app == "degrading":
            since = self.serving_since
            if since is not None and self._clock() - since >= behaviour.degrade_after:
                return "redis"
        return None

    def handle(self, request: AppRequest, behaviour: AppBehaviour, *, via_tag: bool, frontend_origin: str) -> AppResponse:
        if not via_tag:
            with self._lock:
                if self._serving_since is None:
                    self._serving_since = self._clock()
        if behaviour.app == "host-bound" and via_tag:  # as Django with DEBUG off answers a host outside ALLOWED_HOSTS
            return AppResponse(400, DJANGO_BAD_REQUEST, (("Content-Type", "text/html"),))
        origin = request.headers.get("origin", "")
        cors = (("Access-Control-Allow-Origin", origin), ("Vary", "Origin")) if origin and origin == frontend_origin else ()
        if request.method == "OPTIONS":
            return self._preflight(request, cors)
        answer = self._route(request, behaviour)
        return AppResponse(answer.status, answer.body, answer.headers + cors)

    @staticmethod
    def _preflight(request: AppRequest, cors: tuple[tuple[str, str], ...]) -> AppResponse:
        """As django-cors-headers answers: 200 always, the allow headers only for an allowed origin."""
        if not cors or "access-control-request-method" not in request.headers:
            return AppResponse(200, b"", (("Content-Length", "0"),) + cors)
        return AppResponse(
            200,
            b"",
            cors
            + (
                ("Access-Control-Allow-Methods", _CORS_METHODS),
                ("Access-Control-Allow-Headers", _CORS_HEADERS),
                ("Access-Control-Max-Age", "86400"),
                ("Content-Length", "0"),
            ),
        )

    def _route(self, request: AppRequest, behaviour: AppBehaviour) -> AppResponse:
        path = request.path.rstrip("/") or "/"
        known = {HEALTH_PATH, DETAILED_HEALTH_PATH, ITEMS_PATH}
        if path not in known:
            return _json(404, {"detail": "Not found."})
        if request.method not in ("GET", "HEAD"):
            return _json(405, {"detail": f'Method "{request.method}" not allowed.'}, (("Allow", "GET, HEAD, OPTIONS"),))
        broken = self.failing_component(behaviour)
        if path == HEALTH_PATH:
            return _json(503, {"status": "error"}) if broken else _json(200, {"status": "ok"})
        if path == DETAILED_HEALTH_PATH:
            components = {"db": "ok", "redis": "ok", "celery": "ok"}
            if broken == "db":
                components["db"] = "error: connection refused"
                components["celery"] = "error: no workers answered"
            elif broken == "redis":
                components["redis"] = "error: Timeout reading from socket"
            status = "error" if broken else "ok"
            return _json(503 if broken else 200, {"status": status, "components": components})
        if broken:
            return _json(500, {"detail": "A server error occurred."})
        if behaviour.app == "errors":
            with self._lock:
                fails = self._rng.random() < behaviour.error_ratio
            if fails:
                return _json(500, {"detail": "A server error occurred."})
        return _json(200, {"count": len(_ITEMS), "results": _ITEMS})
