"""The fault-injection harness: the local cloud as an unreliable world, on purpose.

    with FaultHarness(seed=7) as harness:
        with harness.cloud(latency={...}) as cloud:      # a LocalCloud whose pushes go through the harness
            harness.arm(Target.grpc("google.cloud.run.v2.Jobs/RunJob"), CRASH)
            cloud.push_tag("v1.0.0")                     # the webhook goes through the harness too
            harness.settle()

What it does to every scenario, whatever else is armed:
- **Deliveries** (`DeliveryLayer`): a proxy on 127.0.0.1 stands between the Pub/Sub emulator's push subscriptions
  (and the GitHub webhook) and the functions. Each push it receives it forwards 1 to 5 times (seeded), every copy
  after its own random delay (so messages that arrive close together are reordered) and concurrently. For Pub/Sub
  the emulator hears success when any copy succeeded (an ack wins, as in Pub/Sub), else the first failure (it
  redelivers, and the redelivery is duplicated again). For the webhook GitHub hears the worst answer, since a
  person redelivers a failed delivery from GitHub's page.

What can be armed per step (`arm(target, kind)`), on any target:
- a **target** is a gRPC method of the fakes (Cloud Run, Cloud Build, Monitoring), optionally only its n-th call
  from now; a Storage request (method and a pattern over path, query and the start of the body), through a fault
  proxy in front of fake-gcs-server that only the functions use; or a Slack Web API method;
- a **kind**: a transient error once (UNAVAILABLE / 503), transient for a while (RESOURCE_EXHAUSTED / 429, three
  calls), a permanent error once or for a while (PERMISSION_DENIED / 403), a crash right after the call's effect
  (the work is done, the answer lost: the caller dies before it can record it), a slow call, or the deploy lease
  expiring right after the call's effect (and a competitor, a second drive message or a second rollback request,
  arriving at once).

Everything fired is counted (`fired()`), every delivery recorded (`deliveries.records`), every log line of the
functions captured (`logs`), and the serving traffic sampled (`traffic_history`) so the invariants
(`tools.reliability.invariants`) can judge from the state of the local cloud itself.

How the functions' Storage and Slack clients are pointed at the fault proxies: the client factory
(`shared.clients`) builds each client once, reading the environment; the harness builds them while the
environment points at its proxies, then restores the environment, so the local cloud's own helpers (the CDN in
front of the live bucket, the fake build's upload, the invariants) keep talking to the real servers directly.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import random
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, Callable, Iterator

# Fault kinds: the columns of the matrix.
TRANSIENT = "transient"  # one transient error: UNAVAILABLE, 503
TRANSIENT_WHILE = "transient-while"  # transient for a while: RESOURCE_EXHAUSTED (429), three calls in a row
PERMANENT = "permanent"  # one permanent error: PERMISSION_DENIED, 403
PERMANENT_WHILE = "permanent-while"  # permanent for a while (an IAM binding missing until someone adds it): three calls
CRASH = "crash"  # the effect is done, then the caller crashes before recording it (the answer is lost)
SLOW = "slow"  # the call takes seconds
LEASE_EXPIRY = "lease-expiry"  # the deploy lease expires mid-step, and a competitor arrives at once
DIES = "dies"  # the effect is done, then the functions' process is killed outright (no except, no finally)
KINDS = (TRANSIENT, TRANSIENT_WHILE, PERMANENT, PERMANENT_WHILE, CRASH, SLOW, LEASE_EXPIRY, DIES)
WHILE_KINDS = (TRANSIENT_WHILE, PERMANENT_WHILE)

# State conditions: the "state" axis, a record of tagship's made so right after a step's effect.
MISSING = "missing"  # deleted
UNREADABLE = "unreadable"  # bytes that are not JSON
WRONG_SHAPE = "wrong-shaped"  # valid JSON, every field of the wrong type
STALE = "stale"  # as it was before the step (a lost update, a backup restored): deleted if it did not exist then
CONDITIONS = (MISSING, UNREADABLE, WRONG_SHAPE, STALE)
WRONG = {"tag": 7, "state": ["live"], "commit": None, "history": "none", "live": {"x": 1}, "previous": 3,
         "timeline": "x", "owner": [], "expires": "soon", "waiting": 5, "status": 1, "created_at": "yesterday",
         "paused": "yes", "held": 5}

SLOW_SECONDS = 2.5  # longer than the Slack timeout of the local config (2 s): a slow Slack is a timed-out Slack
WHILE_TIMES = 3
SCHEDULER_SECONDS = 3.0  # after a death, the watchdog ticks this often (a minute in production)
_HOP_HEADERS = {"host", "content-length", "connection", "transfer-encoding", "keep-alive", "accept-encoding"}


def _quiet_handler() -> Any:
    from werkzeug.serving import WSGIRequestHandler

    class Quiet(WSGIRequestHandler):
        def log_request(self, code: Any = "-", size: Any = "-") -> None:
            pass

    return Quiet


class _Server:
    """A threaded werkzeug server on loopback around one WSGI callable."""

    def __init__(self, app: Callable[..., Any], name: str) -> None:
        self._app = app
        self._name = name
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    def start(self) -> None:
        from werkzeug.serving import make_server

        self._server = make_server("127.0.0.1", 0, self._app, threaded=True, request_handler=_quiet_handler())
        self.base_url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=self._name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


# -- deliveries ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Delivery:
    """One copy of one push, as the function answered it."""

    target: str  # the function: deploy_on_tag, deploy_progress, health_watchdog, rollback
    message: str  # the Pub/Sub message id, or the GitHub delivery id
    copy: int  # 1..copies
    copies: int
    status: int  # 0 when the function never answered
    started: float
    seconds: float


class DeliveryLayer:
    """The proxy between the push subscriptions (and GitHub) and the functions (see the module docstring)."""

    def __init__(self, *, seed: int, copies: tuple[int, int] = (1, 5), spread: float = 0.25,
                 timeout: float = 120.0) -> None:
        self._rng = random.Random(seed)
        self.copies = copies
        self.spread = spread
        self.timeout = timeout
        self._lock = threading.Lock()
        self._routes: dict[str, tuple[str, str]] = {}  # proxy path -> (name, target URL)
        self.records: list[Delivery] = []
        self._in_flight = 0
        self._last_activity = time.monotonic()
        self._server = _Server(self._wsgi, "fault-deliveries")

    def start(self) -> "DeliveryLayer":
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def route(self, url: str) -> str:
        """The URL to push to instead of `url` (a function's URL): every push to it reaches `url` 1..N times."""
        name = urllib.parse.urlparse(url).path.strip("/").rsplit("/", 1)[-1] or "root"
        with self._lock:
            path = f"/{len(self._routes)}-{name}/"
            self._routes[path] = (name, url)
        return self._server.base_url + path

    def reroute(self, old_base: str, new_base: str) -> None:
        """Every route to a URL under `old_base` reaches the same path under `new_base` from now on."""
        with self._lock:
            self._routes = {path: (name, new_base + url[len(old_base):] if url.startswith(old_base) else url)
                            for path, (name, url) in self._routes.items()}

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    def quiet_for(self) -> float:
        """Seconds since the last push arrived or was answered (0 while one is in flight)."""
        with self._lock:
            return 0.0 if self._in_flight else time.monotonic() - self._last_activity

    def count(self, target: str | None = None) -> int:
        with self._lock:
            return sum(1 for r in self.records if target is None or r.target == target)

    def _plan(self) -> tuple[int, list[float]]:
        with self._lock:
            copies = self._rng.randint(*self.copies)
            return copies, [self._rng.uniform(0, self.spread) for _ in range(copies)]

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        from werkzeug.wrappers import Request, Response

        request = Request(environ)
        with self._lock:
            route = next(((p, r) for p, r in self._routes.items() if request.path.startswith(p)), None)
        if route is None:
            return Response("no such route", 404)(environ, start_response)
        path, (name, url) = route
        body = request.get_data()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        message = request.headers.get("X-GitHub-Delivery") or _message_id(body)
        webhook = "X-GitHub-Delivery" in request.headers
        with self._lock:
            self._in_flight += 1
            self._last_activity = time.monotonic()
        try:
            statuses = self._fan_out(name, url + request.path[len(path):], message, body, headers)
        finally:
            with self._lock:
                self._in_flight -= 1
                self._last_activity = time.monotonic()
        ok = [s for s in statuses if 200 <= s < 300]
        failed = [s for s in statuses if not 200 <= s < 300]
        if webhook:  # GitHub shows the worst answer, which a person redelivers
            status = max(failed, default=0) or statuses[0]
        else:  # an ack wins
            status = ok[0] if ok else (failed[0] or 503)
        answer = json.dumps({"copies": len(statuses), "statuses": statuses})
        return Response(answer, status=status or 503, content_type="application/json")(environ, start_response)

    def _fan_out(self, name: str, url: str, message: str, body: bytes, headers: dict[str, str]) -> list[int]:
        import requests

        copies, delays = self._plan()
        statuses = [0] * copies

        def deliver(index: int) -> None:
            time.sleep(delays[index])
            started = time.monotonic()
            try:
                statuses[index] = requests.post(url, data=body, headers=headers, timeout=self.timeout).status_code
            except requests.RequestException:
                statuses[index] = 0
            with self._lock:
                self.records.append(Delivery(name, message, index + 1, copies, statuses[index], started,
                                             time.monotonic() - started))

        threads = [threading.Thread(target=deliver, args=(i,), daemon=True, name=f"deliver-{name}") for i in range(copies)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return statuses


def _message_id(body: bytes) -> str:
    try:
        message = json.loads(body).get("message", {})
        return str(message.get("messageId") or message.get("message_id") or "")
    except (ValueError, AttributeError):
        return ""


# -- HTTP faults (Storage, Slack) ---------------------------------------------------------------------------------
@dataclass
class HttpFault:
    """Requests whose `METHOD path?query body-start` matches `pattern` answer `status` (0: no error, only `delay`)."""

    label: str
    pattern: re.Pattern[str]
    status: int
    times: int  # how many matching requests it strikes; -1 until cleared
    after_effect: bool = False  # forward first (the effect happens), then answer the error
    delay: float = 0.0
    on_effect: Callable[[], None] | None = None  # runs after a matching request was forwarded
    fired: int = 0


class HttpFaultProxy:
    """A reverse proxy in front of one local HTTP server (fake-gcs-server, the fake Slack) that injects faults."""

    def __init__(self, upstream: str, name: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.name = name
        self._lock = threading.Lock()
        self._faults: list[HttpFault] = []
        self._fired: list[str] = []  # labels of every strike, kept after the faults are cleared
        self.requests = 0
        self._server = _Server(self._wsgi, f"fault-{name}")
        self._local = threading.local()

    def start(self) -> "HttpFaultProxy":
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    @property
    def base_url(self) -> str:
        return self._server.base_url

    def add(self, fault: HttpFault) -> HttpFault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def fired(self) -> list[tuple[str, int]]:
        with self._lock:
            counts: dict[str, int] = {}
            for label in self._fired:
                counts[label] = counts.get(label, 0) + 1
            return list(counts.items())

    def _session(self) -> Any:
        import requests

        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def _strike(self, text: str, after_effect: bool) -> HttpFault | None:
        with self._lock:
            self.requests += 0 if after_effect else 1
            for fault in self._faults:
                if fault.times == 0 or fault.after_effect != after_effect or not fault.pattern.search(text):
                    continue
                if fault.times > 0:
                    fault.times -= 1
                fault.fired += 1
                self._fired.append(fault.label)
                return fault
        return None

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        from werkzeug.wrappers import Request, Response

        request = Request(environ)
        body = request.get_data()
        query = environ.get("QUERY_STRING", "")
        text = f"{request.method} {urllib.parse.unquote(request.path)}?{urllib.parse.unquote(query)} " + body[:4096].decode("latin-1")
        fault = self._strike(text, after_effect=False)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.status:
                return self._error(fault)(environ, start_response)
        url = self.upstream + request.path + (f"?{query}" if query else "")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        answer = self._session().request(request.method, url, data=body, headers=headers, timeout=60,
                                         allow_redirects=False)
        late = self._strike(text, after_effect=True)
        if late is not None:
            if late.on_effect is not None:
                late.on_effect()
            if late.delay:
                time.sleep(late.delay)
            if late.status:
                return self._error(late)(environ, start_response)
        out_headers = [(k, v) for k, v in answer.headers.items() if k.lower() not in _HOP_HEADERS | {"content-encoding"}]
        return Response(answer.content, status=answer.status_code, headers=out_headers)(environ, start_response)

    def _error(self, fault: HttpFault) -> Any:
        from werkzeug.wrappers import Response

        message = f"injected fault ({fault.label}) by the {self.name} fault proxy"
        body = {"error": {"code": fault.status, "message": message,
                          "errors": [{"message": message, "domain": "global", "reason": "backendError"}]}}
        headers = {"Retry-After": "1"} if fault.status == 429 else {}
        return Response(json.dumps(body), status=fault.status, content_type="application/json", headers=headers)


# -- gRPC effect hooks --------------------------------------------------------------------------------------------
class EffectHooks:
    """Runs callbacks right after a fake's gRPC method did its work, before the caller hears the answer.

    Installed by wrapping the scenario's `take_fault_after_effect`, which every fake calls at exactly that moment.
    """

    def __init__(self, scenario: Any) -> None:
        self._scenario = scenario
        self._original = scenario.take_fault_after_effect
        self._lock = threading.Lock()
        self._hooks: list[tuple[str, int, Callable[[], None]]] = []
        self.calls: dict[str, int] = {}
        scenario.take_fault_after_effect = self._after_effect

    def uninstall(self) -> None:
        self._scenario.take_fault_after_effect = self._original

    def on(self, method: str, callback: Callable[[], None], *, nth: int = 1) -> None:
        """`callback()` right after the n-th call of `method` counted from now."""
        with self._lock:
            self._hooks.append((method, self.calls.get(method, 0) + nth, callback))

    def count(self, method: str) -> int:
        with self._lock:
            return self.calls.get(method, 0)

    def clear(self) -> None:
        with self._lock:
            self._hooks.clear()

    def _after_effect(self, method: str) -> str | None:
        code = self._original(method)  # this call's own fault first: a hook below may arm the next call's
        with self._lock:
            self.calls[method] = self.calls.get(method, 0) + 1
            count = self.calls[method]
            due = [hook for hook in self._hooks if hook[0] == method and hook[1] == count]
            self._hooks = [hook for hook in self._hooks if hook not in due]
        for _, _, callback in due:
            callback()
        return code


# -- targets ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """Where a fault strikes: `system` is grpc, storage or slack."""

    system: str
    method: str = ""  # grpc: "google.cloud.run.v2.Services/UpdateService"; slack: "chat.postMessage"
    nth: int = 1  # grpc: the n-th call from when it is armed
    pattern: str = ""  # storage: a regex over "METHOD path?query body-start"

    @classmethod
    def grpc(cls, method: str, nth: int = 1) -> "Target":
        return cls("grpc", method=method, nth=nth)

    @classmethod
    def storage(cls, pattern: str) -> "Target":
        return cls("storage", pattern=pattern)

    @classmethod
    def slack(cls, method: str = "chat.postMessage", text: str = "") -> "Target":
        """A Slack method; `text` (a regex over the request) narrows the slow and lease faults to some messages."""
        return cls("slack", method=method, pattern=text)

    def describe(self) -> str:
        if self.system == "grpc":
            return f"{self.method.rsplit('.', 1)[-1]}" + (f" #{self.nth}" if self.nth > 1 else "")
        if self.system == "slack":
            return f"slack {self.method}"
        return f"storage {self.pattern}"


GRPC_CODES = {TRANSIENT: "UNAVAILABLE", TRANSIENT_WHILE: "RESOURCE_EXHAUSTED", PERMANENT: "PERMISSION_DENIED",
              PERMANENT_WHILE: "PERMISSION_DENIED", CRASH: "UNAVAILABLE"}
HTTP_CODES = {TRANSIENT: 503, TRANSIENT_WHILE: 429, PERMANENT: 403, PERMANENT_WHILE: 403, CRASH: 503}
SLACK_CODES = {TRANSIENT: "503", TRANSIENT_WHILE: "429", PERMANENT: "403", PERMANENT_WHILE: "403", CRASH: "500"}


# -- the harness ----------------------------------------------------------------------------------------------------
class LogCapture(io.TextIOBase):
    """The functions' JSON log lines, kept as parsed dicts (what Cloud Logging would hold)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffer = ""
        self.lines: list[dict[str, Any]] = []

    def write(self, text: str) -> int:
        with self._lock:
            self._buffer += text
            *complete, self._buffer = self._buffer.split("\n")
            for line in complete:
                if line.strip():
                    try:
                        self.lines.append(json.loads(line))
                    except ValueError:
                        self.lines.append({"severity": "DEFAULT", "message": line})
        return len(text)

    def flush(self) -> None:
        pass

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.lines)


class TrafficSampler:
    """Samples which revision serves the API and the worker, every few milliseconds, keeping each change."""

    def __init__(self, fake_run: Any, services: tuple[str, str], interval: float = 0.01) -> None:
        self._fake_run = fake_run
        self._services = services
        self._interval = interval
        self.history: list[tuple[float, dict[str, int], dict[str, int]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="traffic-sampler", daemon=True)

    def start(self) -> "TrafficSampler":
        self.sample()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sample()

    def sample(self) -> None:
        api, worker = (self._fake_run.traffic(s) for s in self._services)
        if not self.history or self.history[-1][1:] != (api, worker):
            self.history.append((time.monotonic(), api, worker))

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.sample()
            except Exception:  # noqa: BLE001 - the fake closing under us at the end
                return


class FaultHarness:
    """One scenario's unreliable world: deliveries, armed faults, captured logs and sampled traffic."""

    def __init__(self, *, seed: int, copies: tuple[int, int] = (1, 5), spread: float = 0.25) -> None:
        self.seed = seed
        self.deliveries = DeliveryLayer(seed=seed, copies=copies, spread=spread)
        self.logs = LogCapture()
        self.armed: list[str] = []
        self.events: list[str] = []  # what the harness itself did (lease expired, competitor sent)
        self._stack = contextlib.ExitStack()
        self.local: Any = None
        self.hooks: EffectHooks | None = None
        self.storage: HttpFaultProxy | None = None
        self.slack: HttpFaultProxy | None = None
        self.sampler: TrafficSampler | None = None
        self.child: Any = None  # tools.reliability.child.ChildFunctions, when the functions run in a process
        self._scenario_keys: set[str] = set()  # fault keys armed on the scenario, cleared by disarm()
        self._scheduler_stopped = threading.Event()

    def __enter__(self) -> "FaultHarness":
        from shared import log

        self.deliveries.start()
        self._stack.callback(self.deliveries.stop)
        log.set_stream(self.logs)
        self._stack.callback(log.set_stream, None)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stack.close()

    @contextlib.contextmanager
    def cloud(self, *, child: bool = False, **options: Any) -> Iterator[Any]:
        """A LocalCloud whose pushes and webhook go through the delivery layer, with the fault proxies installed.
        `child`: the functions run in a process of their own (`tools.reliability.child`), which `DIES` kills."""
        from localcloud.cloud import LocalCloud

        with LocalCloud(push_via=self.deliveries.route, **options) as local:
            self._attach(local)
            if child:
                self._move_functions_to_a_child(local)
            try:
                yield local
            finally:
                self._detach()

    def _attach(self, local: Any) -> None:
        from shared import clients

        self.local = local
        local.webhook_url = self.deliveries.route(local.webhook_url)
        self.hooks = EffectHooks(local.scenario)
        self.storage = HttpFaultProxy(local.gcs.endpoint, "storage").start()
        self.slack = HttpFaultProxy(local.slack.base_url.rstrip("/").rsplit("/api", 1)[0], "slack").start()
        saved = {name: os.environ.get(name) for name in ("STORAGE_EMULATOR_HOST", "TAGSHIP_SLACK_API_URL")}
        try:  # the functions' clients are built now, against the proxies (see the module docstring)
            os.environ["STORAGE_EMULATOR_HOST"] = self.storage.base_url
            os.environ["TAGSHIP_SLACK_API_URL"] = self.slack.base_url + "/api/"
            clients.reset()
            clients.storage(local.project)
            token = os.environ.get("SLACK_BOT_TOKEN")
            if token:
                clients.slack_web(token, local.config.slack.timeout_seconds)
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        # The Slack client is kept per API URL read at each call (shared.clients.slack_web): the functions in this
        # process must keep meeting the proxy for the whole scenario, or a Slack fault armed on it never strikes.
        os.environ["TAGSHIP_SLACK_API_URL"] = self.slack.base_url + "/api/"
        self.sampler = TrafficSampler(local.fake_run, (local.config.api.service, local.config.worker.service)).start()

    def _move_functions_to_a_child(self, local: Any) -> None:
        from tools.reliability.child import ChildFunctions

        assert self.storage is not None and self.slack is not None
        env = {**os.environ, "STORAGE_EMULATOR_HOST": self.storage.base_url,
               "TAGSHIP_SLACK_API_URL": self.slack.base_url + "/api/"}
        self.child = ChildFunctions(env, on_line=self.logs.write).start()
        self.deliveries.reroute(local.functions.base_url, self.child.base_url)
        local.functions.stop()

    def _detach(self) -> None:
        self._scheduler_stopped.set()
        if self.child is not None:
            self.child.stop()
            self.child = None
        if self.sampler is not None:
            self.sampler.stop()
        if self.hooks is not None:
            self.hooks.uninstall()
        if self.local is not None:
            os.environ["TAGSHIP_SLACK_API_URL"] = self.local.slack.base_url  # as the local cloud set it
        for proxy in (self.storage, self.slack):
            if proxy is not None:
                proxy.stop()

    # -- arming -----------------------------------------------------------------------------------------------------
    def arm(self, target: Target, kind: str, *, competitor: Callable[[], None] | None = None, label: str = "") -> None:
        """Arms one fault of `kind` at `target` (see the module docstring). `competitor` runs right after the
        lease was expired (LEASE_EXPIRY): whatever should now race the step in flight. `label` names the step in
        what `fired()` reports (the target's own description by default)."""
        label = label or target.describe()
        self.armed.append(f"{kind} @ {label}")
        if kind == DIES:
            self._arm_death(target, label)
        elif target.system == "grpc":
            self._arm_grpc(target, kind, competitor)
        elif target.system == "storage":
            self._arm_storage(target, kind, competitor, label)
        elif target.system == "slack":
            self._arm_slack(target, kind, competitor, label)
        else:
            raise ValueError(f"target system: expected grpc, storage or slack, found {target.system!r}")

    def _expire_then(self, competitor: Callable[[], None] | None) -> Callable[[], None]:
        def act() -> None:
            expired = expire_lease(self.local)
            self.events.append(f"lease expired ({expired or 'none held'})")
            if competitor is not None:
                threading.Thread(target=competitor, name="competitor", daemon=True).start()
                self.events.append("competitor sent")

        return act

    def _arm_death(self, target: Target, label: str) -> None:
        """The functions' process dies right after the target's effect (before its caller hears the answer)."""
        if self.child is None:
            raise RuntimeError(f"{DIES} needs the functions in a process of their own: harness.cloud(child=True)")
        self._after_effect(target, f"{DIES} {label}", self._die_then(label))

    def _after_effect(self, target: Target, label: str, callback: Callable[[], None]) -> None:
        """`callback()` once, right after the target's effect and before its caller hears the answer."""
        if target.system == "grpc":
            assert self.hooks is not None
            self.hooks.on(target.method, callback, nth=target.nth)
            return
        proxy = self.storage if target.system == "storage" else self.slack
        assert proxy is not None
        pattern = target.pattern if target.system == "storage" else (
            re.escape(target.method) + (f".*{target.pattern}" if target.pattern else ""))
        proxy.add(HttpFault(label, re.compile(pattern, re.DOTALL), 0, times=1, after_effect=True, on_effect=callback))

    def _die_then(self, label: str) -> Callable[[], None]:
        """Kills the process now; then, as the platform and time would: a new instance starts, the dead holder's
        lease reaches its expiry (`deploy.lease_seconds` later, fast-forwarded), and the scheduler's next tick
        comes (the watchdog's nudge of whatever waits)."""
        def die() -> None:
            assert self.child is not None
            self.child.kill()
            self.events.append(f"killed the functions' process after {label}")
            threading.Thread(target=self._after_death, name="after-death", daemon=True).start()

        return die

    def _after_death(self) -> None:
        assert self.child is not None
        old = self.child.base_url
        self.child.start()
        self.deliveries.reroute(old, self.child.base_url)
        expired = expire_lease(self.local)
        self.events.append(f"new instance; lease expired ({expired or 'none held'}); the scheduler ticks")
        while not self._scheduler_stopped.is_set():  # Cloud Scheduler's minute, scaled like the local intervals
            self.local.tick_watchdog()
            self._scheduler_stopped.wait(SCHEDULER_SECONDS)

    def arm_state(self, target: Target, record: str, condition: str, label: str) -> None:
        """Right after the target's effect, the state record `record` (a name, or a prefix ending in "/" for its
        newest object) is made `condition`, straight in the state bucket."""
        self.armed.append(f"{record} {condition} @ {label}")
        before = _read_raw(self.local, record)  # what STALE writes back

        def strike() -> None:
            done = break_record(self.local, record, condition, before)
            self.events.append(f"state: {done} after {label}")

        self._after_effect(target, f"{condition} {record} {label}", strike)

    def _arm_grpc(self, target: Target, kind: str, competitor: Callable[[], None] | None) -> None:
        assert self.hooks is not None
        scenario = self.local.scenario
        method = target.method
        if kind == SLOW:
            def slow() -> None:
                self.events.append(f"slow {method.rsplit('/', 1)[-1]} {SLOW_SECONDS}s")
                time.sleep(SLOW_SECONDS)

            self.hooks.on(method, slow, nth=target.nth)
            return
        if kind == LEASE_EXPIRY:
            self.hooks.on(method, self._expire_then(competitor), nth=target.nth)
            return
        code = GRPC_CODES[kind]
        times = WHILE_TIMES if kind in WHILE_KINDS else 1
        after = kind == CRASH

        self._scenario_keys.add(method)

        def arm_now() -> None:
            scenario.inject_fault(method, code, times=times, after_effect=after)

        if target.nth == 1:
            arm_now()
        else:  # armed right after the (n-1)-th call, so it strikes the n-th
            self.hooks.on(method, arm_now, nth=target.nth - 1)

    def _arm_storage(self, target: Target, kind: str, competitor: Callable[[], None] | None, label: str) -> None:
        assert self.storage is not None
        pattern = re.compile(target.pattern, re.DOTALL)
        label = f"{kind} {label}"
        if kind == SLOW:
            self.storage.add(HttpFault(label, pattern, 0, times=WHILE_TIMES, delay=SLOW_SECONDS))
        elif kind == LEASE_EXPIRY:
            self.storage.add(HttpFault(label, pattern, 0, times=1, after_effect=True,
                                       on_effect=self._expire_then(competitor)))
        else:
            self.storage.add(HttpFault(label, pattern, HTTP_CODES[kind], times=WHILE_TIMES if kind in WHILE_KINDS else 1,
                                       after_effect=kind == CRASH))

    def _arm_slack(self, target: Target, kind: str, competitor: Callable[[], None] | None, label: str) -> None:
        assert self.slack is not None
        key = f"slack/{target.method}"
        pattern = re.compile(re.escape(target.method) + (f".*{target.pattern}" if target.pattern else ""), re.DOTALL)
        if kind == SLOW:
            self.slack.add(HttpFault(f"slow {label}", pattern, 0, times=WHILE_TIMES, delay=SLOW_SECONDS))
        elif kind == LEASE_EXPIRY:
            self.slack.add(HttpFault(f"lease-expiry {label}", pattern, 0, times=1, after_effect=True,
                                     on_effect=self._expire_then(competitor)))
        else:
            self._scenario_keys.add(key)
            self.local.scenario.inject_fault(key, SLACK_CODES[kind], times=WHILE_TIMES if kind in WHILE_KINDS else 1,
                                             after_effect=kind == CRASH)

    def slack_down(self) -> None:
        """Slack refuses every connection until the end of the scenario."""
        self.armed.append("slack down throughout")
        self.local.slack.down = True

    # -- figures and settling -----------------------------------------------------------------------------------
    def fired(self) -> list[str]:
        """Every fault that struck, and every lease the harness expired."""
        found = [f"{method.rsplit('/', 1)[-1]}:{code}{' after effect' if after else ''}"
                 for method, code, after in self.local.scenario.faults_fired]
        for proxy in (self.storage, self.slack):
            if proxy is not None:
                found += [f"{proxy.name}:{label} x{count}" for label, count in proxy.fired()]
        return found + [e for e in self.events if e.startswith(("lease expired", "slow ", "killed", "state:"))]

    def disarm(self) -> None:
        """Stops every fault and slowness, so what follows (the settling and the checks) meets a working cloud."""
        self._scheduler_stopped.set()
        for key in self._scenario_keys:
            self.local.scenario.clear_fault(key)
        if self.hooks is not None:
            self.hooks.clear()
        for proxy in (self.storage, self.slack):
            if proxy is not None:
                proxy.clear()
        self.local.slack.down = False

    def settle(self, *, quiet: float = 1.5, timeout: float = 60.0, done: Callable[[], bool] | None = None) -> bool:
        """Waits until no push is in flight or arrived for `quiet` seconds and `done()` holds; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.deliveries.quiet_for() >= quiet:
                try:
                    if done is None or done():
                        return True
                except Exception:  # noqa: BLE001 - a read failing mid-scenario is retried until the deadline
                    pass
            time.sleep(0.1)
        return False


def _newest(local: Any, record: str) -> str | None:
    """`record` itself, or for a prefix ("markers/") the name of its newest object."""
    if not record.endswith("/"):
        return record
    blobs = list(local.storage_client().list_blobs(local.config.state.bucket, prefix=record))
    return max(blobs, key=lambda b: b.updated).name if blobs else None


def _read_raw(local: Any, record: str) -> tuple[str | None, bytes | None]:
    name = _newest(local, record)
    blob = local.storage_client().bucket(local.config.state.bucket).get_blob(name) if name else None
    return name, (blob.download_as_bytes() if blob is not None else None)


def break_record(local: Any, record: str, condition: str, before: tuple[str | None, bytes | None]) -> str:
    """Makes the record `condition` (see CONDITIONS); says what it did. `before` is (name, content) as read
    before the step, what STALE writes back."""
    name = _newest(local, record)
    if name is None:
        return f"no {record} to make {condition}"
    bucket = local.storage_client().bucket(local.config.state.bucket)
    blob = bucket.get_blob(name)
    old = before[1] if before[0] == name else None
    content = {UNREADABLE: b"\x00{not json", WRONG_SHAPE: json.dumps(WRONG).encode()}.get(
        condition, old if condition == STALE else None)
    if content is None:
        if blob is not None:
            blob.delete()
        return f"{name} {condition} (deleted)"
    bucket.blob(name).upload_from_string(content, content_type="application/json")
    return f"{name} {condition}"


def expire_lease(local: Any) -> str | None:
    """Makes the deploy lease expired now (keeping who held it), as if its holder had outlived it."""
    from google.api_core import exceptions as gexc

    bucket = local.storage_client().bucket(local.config.state.bucket)
    for _ in range(8):
        blob = bucket.get_blob("lease.json")
        if blob is None:
            return None
        data = json.loads(blob.download_as_bytes())
        if not data.get("tag"):
            return None
        data["expires"] = time.time() - 1
        try:
            bucket.blob("lease.json").upload_from_string(json.dumps(data), content_type="application/json",
                                                         if_generation_match=blob.generation)
            return f"{data['tag']} held by {data.get('owner') or 'nobody'}"
        except gexc.PreconditionFailed:
            continue
    return None


__all__ = [
    "CONDITIONS", "CRASH", "DIES", "KINDS", "MISSING", "STALE", "UNREADABLE", "WRONG_SHAPE", "break_record", "LEASE_EXPIRY", "PERMANENT", "PERMANENT_WHILE", "SLOW", "TRANSIENT", "TRANSIENT_WHILE", "Delivery",
    "DeliveryLayer", "EffectHooks", "FaultHarness", "HttpFault", "HttpFaultProxy", "LogCapture", "Target",
    "TrafficSampler", "expire_lease",
]
