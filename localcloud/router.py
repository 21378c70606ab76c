"""Cloud Run's front door on 127.0.0.1: service and tag URLs, the traffic split, and the frontend's CDN.

URLs are path based, since `*.localhost` may not resolve:
- `{base}/s/<service>/...` is the service URL: each request goes to one revision, chosen by weighted random over
  the traffic the service serves now (`FakeCloudRun.revision_for_url`);
- `{base}/t/<tag>---<service>/...` is a tag URL: always the tagged revision;
- `{base}/frontend/<path>` is the frontend bucket behind the CDN (`frontend_source`), `/frontend/` is index.html.

Each served revision runs a `SampleApp` behaving as `scenario.behaviour_for_image(image)` says. Every request a
revision serves is recorded in `request_log`, which the fake Monitoring reads: Cloud Run counts every request a
revision serves, through either URL, so the log keeps `via_tag` but Monitoring counts them all. Requests no
revision served (unknown service: 404; nothing ready to serve: 503) are not recorded, as Cloud Run has no revision
to attribute them to.

Simulated app latency: `scenario.delay("request")` seconds per request (0 unless a test sets it).
"""
from __future__ import annotations

import collections
import ipaddress
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

from werkzeug.wrappers import Request, Response

from localcloud.http_server import LoopbackServer
from localcloud.fake_run import FakeCloudRun, Route
from localcloud.sample_app import AppRequest, SampleApp
from localcloud.scenario import Scenario

FrontendSource = Callable[[str], tuple[int, dict[str, str], bytes]]  # path -> (status, headers, body)
FRONTEND_PREFIX = "/frontend"
LOG_LIMIT = 500_000  # records kept; a long load test must not grow memory without bound

# What Cloud Run's Google Front End answers when it cannot route a request (abridged).
_NOT_FOUND_PAGE = b"<html><body><h1>Error: Page not found</h1><p>The requested URL was not found on this server.</p></body></html>"
_UNAVAILABLE_PAGE = b"<html><body><h1>Error: Service Unavailable</h1><p>The service you requested is not available yet.</p></body></html>"


@dataclass(frozen=True)
class RequestRecord:
    """One request a revision served. `time` is wall-clock seconds (Monitoring intervals are wall-clock)."""

    time: float
    service: str
    revision: str
    path: str
    method: str
    status: int
    latency_ms: float
    via_tag: bool


class Router:
    """The HTTP front of the local Cloud Run. `start()` serves on 127.0.0.1 on a free port, in a daemon thread."""

    def __init__(
        self,
        fake_run: FakeCloudRun,
        scenario: Scenario,
        *,
        frontend_origin: str,
        frontend_source: FrontendSource | None = None,
        seed: int = 0,
    ) -> None:
        self.fake_run = fake_run
        self.scenario = scenario
        self.frontend_origin = frontend_origin  # the origin the apps allow in CORS; may be changed while serving
        self.frontend_source = frontend_source
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._log: collections.deque[RequestRecord] = collections.deque(maxlen=LOG_LIMIT)
        self._apps: dict[tuple[str, str], SampleApp] = {}
        self._http = LoopbackServer(self._wsgi, "localcloud-router")

    # -- life cycle ----------------------------------------------------------------------------------------------
    def start(self) -> "Router":
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    def __enter__(self) -> "Router":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return self._http.base_url

    @property
    def location(self) -> str:
        """The region the served revisions run in (Monitoring's `location` resource label)."""
        return self.fake_run.region

    # -- what was served -------------------------------------------------------------------------------------------
    @property
    def request_log(self) -> list[RequestRecord]:
        """A snapshot of every request a revision served, oldest first."""
        with self._lock:
            return list(self._log)

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    def app_for(self, service: str, revision: str) -> SampleApp:
        """The running app of a revision (made on its first request), for tests that look at its state."""
        with self._lock:
            key = (service, revision)
            if key not in self._apps:
                self._apps[key] = SampleApp(service=service, revision=revision, rng=random.Random(f"{service}/{revision}"))
            return self._apps[key]

    # -- serving -----------------------------------------------------------------------------------------------------
    def _pick(self) -> float:
        with self._lock:
            return self._rng.random()

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        path = request.path
        if path == FRONTEND_PREFIX or path.startswith(FRONTEND_PREFIX + "/"):
            response = self._frontend(request)
        else:
            route = self.fake_run.revision_for_url(path, self._pick)
            if route is None:
                response = Response(_NOT_FOUND_PAGE, 404, content_type="text/html; charset=UTF-8")
            elif not route.revision:
                response = Response(_UNAVAILABLE_PAGE, 503, content_type="text/html; charset=UTF-8")
            else:
                response = self._serve(request, route)
        return response(environ, start_response)

    def _serve(self, request: Request, route: Route) -> Response:
        started = time.perf_counter()
        self.scenario.sleep("request")
        app = self.app_for(route.service, route.revision)
        behaviour = self.scenario.behaviour_for_image(route.image)
        headers = {name.lower(): value for name, value in request.headers.items()}
        answer = app.handle(
            AppRequest(request.method, route.path, headers),
            behaviour,
            via_tag=route.via_tag,
            frontend_origin=self.frontend_origin,
        )
        latency_ms = (time.perf_counter() - started) * 1000
        record = RequestRecord(time.time(), route.service, route.revision, route.path, request.method, answer.status,
                               latency_ms, route.via_tag)
        with self._lock:
            self._log.append(record)
        body = b"" if request.method == "HEAD" else answer.body
        response = Response(body, answer.status)
        response.headers.clear()
        for name, value in answer.headers:
            response.headers.add(name, value)
        return response

    def _frontend(self, request: Request) -> Response:
        if request.path == FRONTEND_PREFIX:
            return Response("", 301, headers={"Location": FRONTEND_PREFIX + "/"})
        if self.frontend_source is None:
            return Response(_NOT_FOUND_PAGE, 404, content_type="text/html; charset=UTF-8")
        if request.method not in ("GET", "HEAD"):
            return Response("", 405, headers={"Allow": "GET, HEAD"})
        path = urllib.parse.unquote(request.path[len(FRONTEND_PREFIX) + 1:])
        if path == "" or path.endswith("/"):
            path += "index.html"
        status, headers, body = self.frontend_source(path)
        return Response(b"" if request.method == "HEAD" else body, status, headers=headers)


class LoadGenerator:
    """Steady traffic against one service URL, as users would send it, so Monitoring has something to count.

    Bounded on purpose: loopback URLs only, at most `MAX_RPS`, sequential (one request in flight), stops by itself
    after `max_seconds` or when the server has gone (`MAX_CONNECTION_FAILURES` refused connections in a row), so a
    test that forgets `stop()` does not hammer a dead port.
    """

    MAX_RPS = 200.0
    MAX_CONNECTION_FAILURES = 20

    def __init__(
        self,
        url: str,
        rps: float,
        paths: Sequence[str] = ("/api/items",),
        *,
        timeout: float = 2.0,
        max_seconds: float = 300.0,
    ) -> None:
        host = urllib.parse.urlsplit(url).hostname or ""
        if not _is_loopback(host):
            raise ValueError(f"LoadGenerator sends to loopback only, found host {host!r} in {url}")
        if not 0 < rps <= self.MAX_RPS:
            raise ValueError(f"rps: expected 0 < rps <= {self.MAX_RPS}, found {rps}")
        if not paths:
            raise ValueError("paths: expected at least one path")
        self.url = url.rstrip("/")
        self.rps = rps
        self.paths = list(paths)
        self.timeout = timeout
        self.max_seconds = max_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._statuses: collections.Counter[int] = collections.Counter()

    @property
    def sent(self) -> int:
        with self._lock:
            return sum(self._statuses.values())

    @property
    def statuses(self) -> dict[int, int]:
        """HTTP status -> how many; 0 counts requests that got no answer."""
        with self._lock:
            return dict(self._statuses)

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def start(self) -> "LoadGenerator":
        if self._thread is not None:
            raise RuntimeError("the load generator is already running")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="localcloud-load", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=self.timeout + 1)

    def __enter__(self) -> "LoadGenerator":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _run(self) -> None:
        interval = 1.0 / self.rps
        started = time.monotonic()
        next_at = started
        failures = 0
        index = 0
        while not self._stop.is_set() and time.monotonic() - started < self.max_seconds:
            path = self.paths[index % len(self.paths)]
            index += 1
            status = self._send(self.url + path)
            with self._lock:
                self._statuses[status] += 1
            failures = failures + 1 if status == 0 else 0
            if failures >= self.MAX_CONNECTION_FAILURES:
                return
            next_at = max(next_at + interval, time.monotonic() - interval)  # no burst to catch up after a stall
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _send(self, url: str) -> int:
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as answer:  # noqa: S310 - loopback, checked above
                answer.read()
                return answer.status
        except urllib.error.HTTPError as error:
            error.read()
            return error.code
        except (OSError, ValueError):
            return 0


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
