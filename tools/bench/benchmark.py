"""tagship's benchmark: every speed figure beside the bound that limits it, measured in one run (`make bench`).

    python -m tools.bench                    the full run (a minute and a half on a 2-core machine)
    python -m tools.bench --quick            every figure, fewer and smaller samples (a smoke run, not figures to quote)
    python -m tools.bench --only publish     some of: cold, webhook, orchestration, restore, memory, publish
    python -m tools.bench --json out.json    also write every figure and its parts as JSON

What is measured, each against what bounds it, all in the same run on the same machine:

1. Cold start. For each function target, a fresh `functions-framework` process (the production server: gunicorn)
   from spawn to its first answered request, against a bare `@functions_framework.http` function. Then, in that
   same process, the first real event, against what it cannot avoid: importing the client libraries that event
   needs (timed in fresh interpreters) plus handling it warm. Which Google libraries each target has loaded after
   its first request (a GitHub ping, a rejected signature) comes from a process that can be asked.
2. Webhook answer. Warm deploy_on_tag, a signed tag push that starts a release: median and p99 latency against
   the floor of that path (recording the release, create-if-absent, plus submitting the build, through the same
   clients in the same process), and the remote calls it makes against the two it must.
3. Orchestration overhead. On the local cloud with set latencies for the cloud's own work, tag push to live over
   the critical path of that work (build, migration, API revision ready and its traffic, worker revision ready,
   the bake the config asks for).
4. Time to restore. A release that degrades once live: first failed probe to the rollback asked (detection,
   bounded by the watchdog's interval and the failures it needs in a row), then to API, worker and frontend
   restored (the rollback, against the sum of its cloud operations' latency).
5. Frontend publish. A 2,000-file, ~20 MB build copied server-side to the live bucket through a proxy that adds a
   real round-trip time in front of fake-gcs-server: the parallel copy against a serial one, and a second publish
   (nothing to copy) against the first.
6. Memory. Peak resident memory of each function's process over its scenario, against the smallest memory setting
   the setup command gives it (`shared.install_plan.functions`).

Everything runs on 127.0.0.1, every loop is bounded, and only one local cloud runs at a time. The functions run
each in its own process, as they do in production, fed by the Pub/Sub emulator's push subscriptions.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import http.client
import json
import math
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from localcloud.processes import stop_process_group

REPO = Path(__file__).resolve().parents[2]
MAIN = REPO / "main.py"
FF_CLI = Path(sys.executable).parent / "functions-framework"
TARGETS = {"deploy_on_tag": "http", "deploy_progress": "cloudevent", "health_watchdog": "cloudevent",
           "rollback": "cloudevent"}
MIB = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    cold_samples: int = 5
    webhook_samples: int = 60
    latency: dict[str, float] = field(default_factory=lambda: {"build": 2.0, "migration": 1.5, "revision_ready": 1.0,
                                                               "traffic": 0.3})
    releases: int = 2  # timed tag push -> live
    tick_seconds: float = 0.5  # the watchdog's interval here (Cloud Scheduler: every minute in production)
    degrade_after: float = 2.0
    publish_files: int = 2000
    publish_mb: float = 20.0
    rtt_ms: float = 30.0
    serial_sample: int = 150
    import_samples: int = 3


QUICK = Settings(cold_samples=1, webhook_samples=8,
                 latency={"build": 0.4, "migration": 0.3, "revision_ready": 0.2, "traffic": 0.1}, releases=1,
                 degrade_after=1.5, publish_files=120, publish_mb=1.0, rtt_ms=10.0, serial_sample=20,
                 import_samples=1)

# The client libraries each first event needs (what its cold start cannot avoid importing).
NEEDS = {
    "deploy_on_tag": ("google.cloud.storage", "google.cloud.devtools.cloudbuild_v1"),
    "deploy_progress": ("google.cloud.storage", "slack_sdk"),
    "health_watchdog": ("google.cloud.storage", "google.cloud.run_v2", "google.cloud.monitoring_v3"),
    "rollback": ("google.cloud.storage", "slack_sdk"),
}
FIRST_EVENT = {
    "deploy_on_tag": "signed tag push that starts a release",
    "deploy_progress": "Cloud Build QUEUED message of a release",
    "health_watchdog": "watchdog tick (probes, Monitoring, state)",
    "rollback": "rollback request with nothing live (refused)",
}


# ---------------------------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (p99 of 60 samples is the largest but none)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def secs(seconds: float) -> str:
    return f"{seconds:.2f} s"


def ratio(value: float, bound: float) -> str:
    return f"{value / bound:.2f}x" if bound > 0 else "n/a"


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post(url: str, body: bytes, headers: dict[str, str], timeout: float = 30.0) -> tuple[int, bytes]:
    """One POST on a fresh connection (as GitHub and Pub/Sub push each open their own)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request("POST", parts.path or "/", body=body, headers={"Content-Length": str(len(body)), **headers})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def get_json(url: str, timeout: float = 30.0) -> Any:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""))
        return json.loads(connection.getresponse().read())
    finally:
        connection.close()


def pubsub_push(url: str, data: Any, attributes: dict[str, str] | None = None, subscription: str = "bench") -> int:
    """What a Pub/Sub push subscription POSTs (the framework turns it into a CloudEvent)."""
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    envelope = {"message": {"data": base64.b64encode(raw).decode(), "attributes": attributes or {},
                            "messageId": uuid.uuid4().hex, "publishTime": "2025-01-01T00:00:00Z"},
                "subscription": f"projects/botbalance-prod/subscriptions/{subscription}"}
    status, _ = post(url, json.dumps(envelope).encode(), {"Content-Type": "application/json"})
    return status


# ---------------------------------------------------------------------------------------------------------------
# remote calls, counted inside a function's process (the child side)
# ---------------------------------------------------------------------------------------------------------------
class Calls:
    """Every remote call the process makes, by transport: (kind, what, wall-clock start, seconds).

    Installed at the transports themselves (requests' Session.send for Cloud Storage, a gRPC client interceptor on
    every insecure channel for Cloud Run, Cloud Build, Monitoring, Pub/Sub and operations, urllib for Slack and
    the health probes), so nothing tagship does can go uncounted.
    """

    LIMIT = 500_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.items: list[tuple[str, str, float, float]] = []

    def add(self, kind: str, what: str, started: float, seconds: float) -> None:
        with self._lock:
            if len(self.items) < self.LIMIT:
                self.items.append((kind, what, started, seconds))

    def since(self, index: int) -> list[tuple[str, str, float, float]]:
        with self._lock:
            return list(self.items[index:])

    def install(self) -> None:
        import urllib.request

        import grpc
        import requests

        storage = urlsplit(os.environ.get("STORAGE_EMULATOR_HOST", "")).netloc
        slack = urlsplit(os.environ.get("TAGSHIP_SLACK_API_URL", "")).netloc
        calls = self

        def kind_of(url: str) -> str:
            netloc = urlsplit(url).netloc
            return "storage" if netloc == storage else "slack" if netloc == slack else "http"

        send = requests.Session.send

        def counted_send(session: Any, request: Any, **kwargs: Any) -> Any:
            started, begun = time.time(), time.perf_counter()
            try:
                return send(session, request, **kwargs)
            finally:
                parts = urlsplit(request.url)
                media = "?alt=media" if "alt=media" in parts.query else ""
                calls.add(kind_of(request.url), f"{request.method} {parts.path}{media}", started,
                          time.perf_counter() - begun)

        requests.Session.send = counted_send  # type: ignore[method-assign]
        opener_open = urllib.request.OpenerDirector.open

        def counted_open(director: Any, fullurl: Any, *args: Any, **kwargs: Any) -> Any:
            url = fullurl if isinstance(fullurl, str) else fullurl.full_url
            method = "GET" if isinstance(fullurl, str) else fullurl.get_method()
            started, begun = time.time(), time.perf_counter()
            try:
                return opener_open(director, fullurl, *args, **kwargs)
            finally:
                calls.add(kind_of(url), f"{method} {urlsplit(url).path}", started, time.perf_counter() - begun)

        urllib.request.OpenerDirector.open = counted_open  # type: ignore[method-assign]

        class Interceptor(grpc.UnaryUnaryClientInterceptor):
            def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
                started, begun = time.time(), time.perf_counter()
                method = details.method.decode() if isinstance(details.method, bytes) else details.method
                outcome = continuation(details, request)
                outcome.add_done_callback(
                    lambda _: calls.add(_grpc_kind(method), method.rsplit("/", 1)[-1], started,
                                        time.perf_counter() - begun))
                return outcome

        insecure = grpc.insecure_channel

        def counted_channel(*args: Any, **kwargs: Any) -> Any:
            return grpc.intercept_channel(insecure(*args, **kwargs), Interceptor())

        grpc.insecure_channel = counted_channel


def _grpc_kind(method: str) -> str:
    service = method.strip("/").split("/", 1)[0]
    for prefix, kind in (("google.cloud.run", "run"), ("google.devtools.cloudbuild", "build"),
                         ("google.monitoring", "monitoring"), ("google.pubsub", "pubsub"),
                         ("google.longrunning", "operations")):
        if service.startswith(prefix):
            return kind
    return "grpc"


CALLS = Calls()


def loaded_libraries() -> list[str]:
    """The Google, gRPC and Slack libraries this process has imported, by package."""
    found = set()
    for name in list(sys.modules):
        parts = name.split(".")
        if parts[0] == "google":
            depth = 4 if parts[1:3] == ["cloud", "devtools"] else 3
            found.add(".".join(parts[:depth]))
        elif parts[0] in ("grpc", "slack_sdk", "proto"):
            found.add(parts[0])
    # google.cloud.functions* ships inside functions-framework itself (its context types): not a client library
    return sorted(name for name in found if name not in ("google", "google.cloud")
                  and not name.startswith("google.cloud.functions"))


def peak_rss_bytes() -> int:
    """This process's peak resident memory (VmHWM: unlike getrusage's ru_maxrss, it does not carry over the
    parent's size from before the exec that started this process)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


# ---------------------------------------------------------------------------------------------------------------
# a function served in its own process, which the benchmark can ask (child side: `python -m tools.bench --serve`)
# ---------------------------------------------------------------------------------------------------------------
def serve(target: str, source: str, signature_type: str, count: bool) -> int:
    """Serves one target with functions-framework's app on a threaded werkzeug server, plus `/__bench/...`:
    `state?since=N` (libraries loaded, peak RSS, remote calls) and `floor` (the webhook path's own remote calls)."""
    if count:
        CALLS.install()
    import functions_framework
    from werkzeug.serving import WSGIRequestHandler, make_server

    app = functions_framework.create_app(target=target, source=source, signature_type=signature_type)

    def bench_endpoint(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        query = parse_qs(environ.get("QUERY_STRING", ""))
        if environ["PATH_INFO"] == "/__bench/floor":
            size = int(environ.get("CONTENT_LENGTH") or 0)
            body = json.loads(environ["wsgi.input"].read(size) or b"{}")
            answer: Any = webhook_floor(body["tag"], body["commit"])
        else:
            since = int(query.get("since", ["0"])[0])
            answer = {"libraries": loaded_libraries(), "peak_rss": peak_rss_bytes(), "calls": CALLS.since(since),
                      "ncalls": len(CALLS.items)}
        payload = json.dumps(answer).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
        return [payload]

    def root(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO", "").startswith("/__bench"):
            return bench_endpoint(environ, start_response)
        return app(environ, start_response)

    class Quiet(WSGIRequestHandler):
        def log_request(self, *args: Any) -> None:
            pass

    server = make_server("127.0.0.1", 0, root, threaded=True, request_handler=Quiet)

    def watch_parent() -> None:  # the benchmark closes our stdin when it is done with us, or when it dies
        sys.stdin.buffer.read()
        os._exit(0)

    threading.Thread(target=watch_parent, daemon=True).start()
    print(server.server_port, flush=True)
    server.serve_forever()
    return 0


def webhook_floor(tag: str, commit: str) -> dict[str, float]:
    """The two remote calls a tag push must make, through the same adapters and clients as deploy_on_tag:
    create the release record if absent, and submit the build."""
    from shared.adapters.cloudbuild import BuildRequest
    from shared.release import new_release

    services = sys.modules["main"].services()
    config = services.config
    record = new_release(tag, commit, "bench", uuid.uuid4().hex, time.time()).to_dict()
    begun = time.perf_counter()
    services.store.records.create(f"bench/floor/{tag}.json", record)
    recorded = time.perf_counter()
    services.builds.submit(BuildRequest(
        tag=tag, commit=commit, repository=config.github.repository, image=config.build.image,
        frontend_dir=config.build.frontend_dir,
        frontend_destination=f"gs://{config.state.bucket}/{config.frontend.releases_prefix}{tag}/",
        timeout_seconds=config.build.timeout_seconds))
    submitted = time.perf_counter()
    return {"record": recorded - begun, "build": submitted - recorded}


class Function:
    """Parent side of `serve`: one function target in its own process."""

    def __init__(self, target: str, *, source: Path = MAIN, signature_type: str | None = None, count: bool = True,
                 log_path: Path | None = None) -> None:
        self.target = target
        self.source = source
        self.signature_type = signature_type or TARGETS[target]
        self.count = count
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.started_in = 0.0
        self._log: Any = None

    def start(self) -> "Function":
        argv = [sys.executable, "-m", "tools.bench", "--serve", self.target, "--source", str(self.source),
                "--signature-type", self.signature_type] + (["--count"] if self.count else [])
        self._log = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL
        begun = time.perf_counter()
        self.process = subprocess.Popen(argv, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self._log, start_new_session=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.strip():
            raise RuntimeError(f"{self.target}: the function's process exited before serving")
        self.port = int(line)
        self.started_in = time.perf_counter() - begun
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def state(self, since: int = 0) -> dict[str, Any]:
        return get_json(f"{self.url}__bench/state?since={since}")

    def stop(self) -> None:
        if self.process is not None:
            if self.process.stdin is not None:
                self.process.stdin.close()
            stop_process_group(self.process)
            self.process = None
        if self._log not in (None, subprocess.DEVNULL):
            self._log.close()


# ---------------------------------------------------------------------------------------------------------------
# 1. cold start
# ---------------------------------------------------------------------------------------------------------------
BARE_FUNCTION = '''import functions_framework


@functions_framework.http
def bare(request):
    return "ok"
'''


def import_cost(modules: tuple[str, ...], samples: int) -> tuple[float, list[str]]:
    """Median seconds a fresh interpreter, with functions-framework already loaded, takes to import `modules`, and
    the libraries those imports load."""
    code = ("import json, time, functions_framework, flask\nfrom tools.bench import benchmark as bench\n"
            "begun = time.perf_counter()\n"
            + "".join(f"import {name}\n" for name in modules)
            + "print(json.dumps([time.perf_counter() - begun, bench.loaded_libraries()]))\n")
    times, libraries = [], []
    for _ in range(samples):
        out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
        took, libraries = json.loads(out.stdout.strip())
        times.append(took)
    return median(times), libraries


def spawn_cli(target: str, source: Path, signature_type: str, log: Any) -> tuple[subprocess.Popen[bytes], int, float]:
    port = free_port()
    begun = time.perf_counter()
    process = subprocess.Popen(
        [str(FF_CLI), "--target", target, "--source", str(source), "--signature-type", signature_type,
         "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    return process, port, begun


def until_answered(request: Callable[[], Any], process: subprocess.Popen[bytes], deadline: float = 30.0) -> Any:
    """Retries `request` while the server is not listening yet; returns its answer."""
    limit = time.monotonic() + deadline
    while True:
        try:
            return request()
        except (ConnectionRefusedError, ConnectionResetError, http.client.RemoteDisconnected):
            if process.poll() is not None or time.monotonic() > limit:
                raise RuntimeError("the function's process never answered") from None
            time.sleep(0.002)


class ColdEvents:
    """The requests each target gets first when cold, built against the local cloud."""

    def __init__(self, cloud: Any) -> None:
        self.cloud = cloud
        self.secret = cloud.webhook_secret
        self.round = 0
        self.tags: list[str] = []

    def github(self, event: str, payload: dict[str, Any], *, good: bool = True) -> tuple[bytes, dict[str, str]]:
        body = json.dumps(payload).encode()
        headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": str(uuid.uuid4()), "Content-Type": "application/json",
                   "User-Agent": "GitHub-Hookshot/bench",
                   "X-Hub-Signature-256": signature(self.secret if good else "not-the-secret", body)}
        return body, headers

    def ping(self) -> tuple[bytes, dict[str, str]]:
        return self.github("ping", {"zen": "Keep it logically awesome.", "hook_id": 1})

    def tag_push(self, tag: str) -> tuple[bytes, dict[str, str]]:
        from localcloud.scenario import AppBehaviour

        commit = self.cloud.commit_for(tag)
        self.cloud.scenario.set_commit(commit, AppBehaviour(build="fail"))  # the build ends at once, quietly
        return self.github("push", self.cloud.tag_push_payload(tag, commit, "bench"))

    def queued(self, tag: str) -> tuple[dict[str, Any], dict[str, str]]:
        from localcloud.fake_build import notification

        build = next(b for b in self.cloud.builds if b.substitutions.get("_TAG") == tag)
        data, attributes = notification(build)
        payload = json.loads(data)
        payload["status"] = "QUEUED"
        for key in ("results", "finishTime", "statusDetail", "failureInfo"):
            payload.pop(key, None)
        return payload, {**attributes, "status": "QUEUED"}


def not_a_pubsub_event(url: str) -> int:
    """A CloudEvent whose data is not a Pub/Sub message: every event target acknowledges it without the cloud."""
    body = json.dumps({"hello": "world"}).encode()
    headers = {"Content-Type": "application/json", "ce-id": uuid.uuid4().hex, "ce-specversion": "1.0",
               "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
               "ce-source": "//pubsub.googleapis.com/projects/botbalance-prod/topics/bench", "ce-time": "2025-01-01T00:00:00Z"}
    status, _ = post(url, body, headers)
    return status


def cold_start(cloud: Any, settings: Settings, workdir: Path, say: Callable[[str], None]) -> dict[str, Any]:
    bare_dir = workdir / "bare"
    events = ColdEvents(cloud)
    cloud.scenario.latency["build"] = 0.0
    log = open(workdir / "cold-start.log", "ab")
    bare: list[float] = []
    ping: list[float] = []
    cold: dict[str, list[float]] = {t: [] for t in TARGETS}
    warm: dict[str, list[float]] = {t: [] for t in TARGETS}
    statuses: dict[str, set[int]] = {t: set() for t in TARGETS}

    def first_events(target: str, url: str, sample: int) -> list[Callable[[], int]]:
        """The target's first event when cold, then the same kind of event again (warm)."""
        tags = (f"v8.{sample}.0", f"v8.{sample}.1")
        if target == "deploy_on_tag":
            return [lambda tag=tag: post(url, *events.tag_push(tag))[0] for tag in tags]
        if target == "deploy_progress":
            return [lambda tag=tag: pubsub_push(url, *events.queued(tag)) for tag in tags]
        if target == "health_watchdog":
            return [lambda: pubsub_push(url, {"job": "tagship-health"})] * 2
        return [lambda: pubsub_push(url, {"to": "previous", "reason": "bench cold start", "requested_by": "bench"})] * 2

    def fresh(target: str, source: Path, kind: str, measure: Callable[[subprocess.Popen[bytes], int, float], None]) -> None:
        process, port, begun = spawn_cli(target, source, kind, log)
        try:
            measure(process, port, begun)
        finally:
            stop_process_group(process)

    def bare_answer(process: subprocess.Popen[bytes], port: int, begun: float) -> None:
        until_answered(lambda: post(f"http://127.0.0.1:{port}/", b"{}", {"Content-Type": "application/json"}), process)
        bare.append(time.perf_counter() - begun)

    def ping_answer(process: subprocess.Popen[bytes], port: int, begun: float) -> None:
        body, headers = events.ping()
        answer = until_answered(lambda: post(f"http://127.0.0.1:{port}/", body, headers), process)
        ping.append(time.perf_counter() - begun)
        statuses["deploy_on_tag"].add(answer[0])

    def event_answers(target: str, sample: int) -> Callable[[subprocess.Popen[bytes], int, float], None]:
        def measure(process: subprocess.Popen[bytes], port: int, begun: float) -> None:
            first, again = first_events(target, f"http://127.0.0.1:{port}/", sample)
            statuses[target].add(until_answered(first, process))
            cold[target].append(time.perf_counter() - begun)
            begun = time.perf_counter()
            statuses[target].add(again())
            warm[target].append(time.perf_counter() - begun)

        return measure

    try:
        for sample in range(settings.cold_samples):
            fresh("bare", bare_dir / "main.py", "http", bare_answer)
            fresh("deploy_on_tag", MAIN, "http", ping_answer)
            for target, kind in TARGETS.items():
                fresh(target, MAIN, kind, event_answers(target, sample))
            say(f"  cold start round {sample + 1}/{settings.cold_samples} done")
    finally:
        log.close()

    # which libraries a target holds after its first requests, from a process that can be asked
    libraries: dict[str, dict[str, list[str]]] = {}
    for target in TARGETS:
        function = Function(target, count=False, log_path=workdir / f"libraries-{target}.log").start()
        try:
            checks: dict[str, list[str]] = {}
            if target == "deploy_on_tag":
                post(function.url, *events.ping())
                checks["after a GitHub ping"] = function.state()["libraries"]
                body, headers = events.github("push", {"ref": "refs/tags/v0.0.1"}, good=False)
                post(function.url, body, headers)
                checks["after a rejected signature"] = function.state()["libraries"]
                post(function.url, *events.tag_push("v8.9.0"))
            else:
                not_a_pubsub_event(function.url)
                checks["after an event that is not a Pub/Sub message"] = function.state()["libraries"]
                if target == "deploy_progress":
                    pubsub_push(function.url, *events.queued("v8.9.0"))
                elif target == "health_watchdog":
                    pubsub_push(function.url, {"job": "tagship-health"})
                else:
                    pubsub_push(function.url, {"to": "previous", "reason": "bench", "requested_by": "bench"})
            checks["after its first real event"] = function.state()["libraries"]
            libraries[target] = checks
        finally:
            function.stop()

    imports = {target: import_cost(NEEDS[target], settings.import_samples) for target in TARGETS}
    bare_median = median(bare)
    rows = []
    for target in TARGETS:
        rows.append({
            "target": target,
            "first_event": FIRST_EVENT[target],
            "cold": median(cold[target]),
            "warm": median(warm[target]),
            "imports": imports[target][0],
            "bound": bare_median + imports[target][0] + median(warm[target]),
            "needs": list(NEEDS[target]),
            "needs_load": imports[target][1],
            "libraries": libraries[target],
            "statuses": sorted(statuses[target]),
        })
    return {"bare": bare_median, "bare_samples": bare, "ping": median(ping), "rows": rows,
            "samples": settings.cold_samples}


# ---------------------------------------------------------------------------------------------------------------
# the scenario: the four functions in their own processes on the local cloud
# ---------------------------------------------------------------------------------------------------------------
class Functions:
    def __init__(self, cloud: Any, workdir: Path) -> None:
        self.cloud = cloud
        self.workdir = workdir
        self.by_target: dict[str, Function] = {}

    def start(self) -> "Functions":
        for target in TARGETS:
            self.by_target[target] = Function(target, log_path=self.workdir / f"{target}.log").start()
        self.cloud.webhook_url = self.by_target["deploy_on_tag"].url
        return self

    def subscribe(self) -> None:
        """Push subscriptions from the topics to the functions, as Eventarc sets them up."""
        from google.cloud import pubsub_v1

        topics = self.cloud.config.topics
        routes = ((topics.builds, "deploy_progress"), (topics.progress, "deploy_progress"),
                  (topics.health, "health_watchdog"), (topics.rollback, "rollback"))
        subscriber = pubsub_v1.SubscriberClient()
        try:
            for topic, target in routes:
                subscriber.create_subscription(request={
                    "name": subscriber.subscription_path(self.cloud.project, f"{topic}-{target}-bench"),
                    "topic": f"projects/{self.cloud.project}/topics/{topic}",
                    "push_config": {"push_endpoint": self.by_target[target].url},
                    "ack_deadline_seconds": 60,
                })
        finally:
            subscriber.close()

    def warm(self, target: str, data: Any) -> int:
        """One harmless event, so the measured ones find a warm instance (as with min instances 1)."""
        return pubsub_push(self.by_target[target].url, data)

    def log_lines(self, target: str) -> list[dict[str, Any]]:
        lines = []
        path = self.workdir / f"{target}.log"
        for raw in path.read_text(errors="replace").splitlines():
            if raw.startswith("{"):
                try:
                    lines.append(json.loads(raw))
                except ValueError:
                    pass
        return lines

    def stop(self) -> None:
        for function in self.by_target.values():
            function.stop()


def pubsub_delivery(cloud: Any, samples: int) -> dict[str, float]:
    """How long the emulator takes to push a message once published: a cloud operation on several paths."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from google.cloud import pubsub_v1

    received: dict[str, float] = {}

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server protocol
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received[base64.b64decode(body["message"]["data"]).decode()] = time.time()
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    subscriber = pubsub_v1.SubscriberClient()
    try:
        topic = "bench-delivery"
        cloud._publisher().create_topic(name=f"projects/{cloud.project}/topics/{topic}")
        subscriber.create_subscription(request={
            "name": subscriber.subscription_path(cloud.project, "bench-delivery-probe"),
            "topic": f"projects/{cloud.project}/topics/{topic}",
            "push_config": {"push_endpoint": f"http://127.0.0.1:{server.server_port}/"}})
        times = []
        for index in range(samples + 2):
            cloud.publish(topic, str(index).encode())
            published = time.time()
            limit = time.monotonic() + 10
            while str(index) not in received and time.monotonic() < limit:
                time.sleep(0.001)
            if index >= 2 and str(index) in received:  # the first deliveries open the emulator's connections
                times.append(received[str(index)] - published)
            time.sleep(0.02)
    finally:
        subscriber.close()
        server.shutdown()
        server.server_close()
    return {"median": median(times), "p90": percentile(times, 90), "samples": len(times)}


def webhook(cloud: Any, functions: Functions, settings: Settings, say: Callable[[str], None]) -> dict[str, Any]:
    """Warm deploy_on_tag: tag pushes that start a release, each beside the floor of the same path."""
    from localcloud.scenario import AppBehaviour

    events = ColdEvents(cloud)
    function = functions.by_target["deploy_on_tag"]
    cloud.scenario.latency["build"] = 0.0

    def push(tag: str) -> tuple[float, int, list[Any]]:
        body, headers = events.tag_push(tag)
        index = function.state()["ncalls"]
        begun = time.perf_counter()
        status, _ = post(function.url, body, headers)
        took = time.perf_counter() - begun
        return took, status, function.state(index)["calls"]

    def floor(tag: str) -> float:
        commit = cloud.commit_for(tag)
        cloud.scenario.set_commit(commit, AppBehaviour(build="fail"))
        status, body = post(f"{function.url}__bench/floor", json.dumps({"tag": tag, "commit": commit}).encode(),
                            {"Content-Type": "application/json"})
        parts = json.loads(body)
        return parts["record"] + parts["build"]

    bare = Function("bare", source=functions.workdir / "bare" / "main.py", signature_type="http", count=False).start()

    def answer() -> float:
        body, headers = events.ping()
        begun = time.perf_counter()
        post(bare.url, body, headers)
        return time.perf_counter() - begun

    latencies, floors, answers, calls, statuses = [], [], [], [], set()
    try:
        for warmup in range(5):
            push(f"v7.0.{warmup}")
            floor(f"floor-warmup-{warmup}")
            answer()
        for sample in range(settings.webhook_samples):
            took, status, made = push(f"v7.1.{sample}")
            latencies.append(took)
            statuses.add(status)
            calls.append(made)
            floors.append(floor(f"floor-{sample}"))
            answers.append(answer())
    finally:
        bare.stop()
    bounds = [a + f for a, f in zip(answers, floors)]
    kinds: dict[str, int] = {}
    for call in calls[-1]:
        key = f"{call[0]} {call[1].split('/')[-1] if call[0] != 'storage' else call[1].split(' ')[0]}"
        kinds[key] = kinds.get(key, 0) + 1
    counts = [len(made) for made in calls]
    say(f"  webhook: {len(latencies)} tag pushes answered {sorted(statuses)}")
    # let the builds end before anything subscribes to their notifications
    cloud.wait_for(lambda: all(b.status.name not in ("QUEUED", "WORKING") for b in cloud.builds), 30)
    return {
        "samples": len(latencies), "statuses": sorted(statuses),
        "median": median(latencies), "p99": percentile(latencies, 99),
        "floor_median": median(floors), "floor_p99": percentile(floors, 99),
        "bare_median": median(answers), "bound_median": median(bounds), "bound_p99": percentile(bounds, 99),
        "remote_calls": max(counts), "remote_calls_min": min(counts), "bound_calls": 2,
        "slack_calls": sum(1 for made in calls for call in made if call[0] == "slack"),
        "calls_of_last": [f"{c[0]}: {c[1]} ({c[3] * 1000:.1f} ms)" for c in calls[-1]],
    }


def orchestration(cloud: Any, functions: Functions, settings: Settings, pubsub: dict[str, float],
                  say: Callable[[str], None], *, releases: int) -> dict[str, Any]:
    lat = settings.latency
    cloud.scenario.latency.update(lat)
    config = cloud.config
    # verify probes every interval while a whole interval still fits in the bake: the last probe is the bake's
    # last interval start, so that is how long the pipeline watches (0.4 s of a 0.6 s bake probed every 0.2 s)
    interval = config.deploy.probe_interval_seconds
    bake = max(0, math.ceil(round(config.deploy.bake_seconds / interval, 6)) - 1) * interval
    delivery = pubsub["median"]
    critical = (lat["build"] + delivery + lat["migration"] + lat["revision_ready"] + lat["traffic"]
                + lat["revision_ready"] + bake)
    deploy_progress = functions.by_target["deploy_progress"]
    rows = []
    for index in range(releases):
        tag = f"v1.{index}.0"
        calls_before = deploy_progress.state()["ncalls"]
        pushed = time.time()
        status = cloud.push_tag(tag)
        record = cloud.wait_for(lambda: _ended(cloud, tag), 120, interval=0.01, what=f"{tag} to end")
        if record["state"] != "live":
            raise RuntimeError(f"{tag} ended {record['state']}: {record.get('error')}")
        live_at = next(at for state, at in record["history"] if state == "live")
        made = deploy_progress.state(calls_before)["calls"]
        by_kind: dict[str, int] = {}
        for call in made:
            by_kind[call[0]] = by_kind.get(call[0], 0) + 1
        steps = {step: (edges.get("started", 0) - pushed, edges.get("finished", 0) - pushed)
                 for step, edges in record.get("steps", {}).items()}
        rows.append({"tag": tag, "status": status, "push_to_live": live_at - pushed, "critical_path": critical,
                     "history": [(state, at - pushed) for state, at in record["history"]], "steps": steps,
                     "remote_calls": by_kind})
        say(f"  {tag}: live {live_at - pushed:.2f} s after its push (critical path {critical:.2f} s)")
    return {"latency": dict(lat), "bake": bake, "bake_config": config.deploy.bake_seconds, "rows": rows,
            "critical_parts": {"build": lat["build"], "its Pub/Sub delivery": round(delivery, 3),
                               "migration": lat["migration"],
                               "API revision ready": lat["revision_ready"], "API traffic": lat["traffic"],
                               "worker revision ready": lat["revision_ready"], "bake as probed": round(bake, 3)}}


def _ended(cloud: Any, tag: str) -> dict[str, Any] | None:
    record = cloud.release(tag)
    return record if record and record["state"] in ("live", "failed", "rolled_back", "superseded") else None


def restore(cloud: Any, functions: Functions, settings: Settings, pubsub: dict[str, float],
            say: Callable[[str], None]) -> dict[str, Any]:
    """A release that degrades after going live: detection by the watchdog, then the rollback."""
    from localcloud.router import LoadGenerator

    config = cloud.config
    api, worker = config.api.service, config.worker.service
    good = cloud.live_tag()
    if good is None:
        raise RuntimeError("restore needs a live release to return to")
    good_record = cloud.release(good)
    good_revisions = good_record["revisions"]
    good_index = good_record["frontend_objects"].get("index.html")
    bad = "v2.0.0"
    cloud.push_tag(bad, app="degrading", degrade_after=settings.degrade_after)
    record = cloud.wait_for(lambda: _ended(cloud, bad), 120, interval=0.01, what=f"{bad} to end")
    if record["state"] != "live":
        raise RuntimeError(f"{bad} was expected to go live before degrading, ended {record['state']}")
    restored_at: dict[str, float] = {}
    stop = threading.Event()
    bucket = cloud.storage_client().bucket(config.frontend.bucket)
    if not cloud.wait_for(lambda: cloud.live_tag() == bad, 10, interval=0.01):
        raise RuntimeError(f"{bad} ended live but the pointer does not say so")

    def watch() -> None:
        while not stop.is_set() and len(restored_at) < 3:
            now = time.time()
            if "api" not in restored_at and cloud.traffic(api) == {good_revisions["api"]: 100}:
                restored_at["api"] = now
            if "worker" not in restored_at and cloud.traffic(worker) == {good_revisions["worker"]: 100}:
                restored_at["worker"] = now
            if "frontend" not in restored_at:
                blob = bucket.get_blob("index.html")
                if blob is not None and blob.md5_hash == good_index:
                    restored_at["frontend"] = now
            time.sleep(0.003)

    watcher = threading.Thread(target=watch, daemon=True)
    load = LoadGenerator(f"{cloud.router.base_url}/s/{api}", rps=20, paths=["/api/items"], max_seconds=60)
    rollback_calls_before = functions.by_target["rollback"].state()["ncalls"]
    load.start()
    watcher.start()
    ticks = 0
    first_tick = time.monotonic()
    deadline = first_tick + 40
    try:
        while len(restored_at) < 3 and time.monotonic() < deadline:
            cloud.tick_watchdog()  # on a fixed cadence, as Cloud Scheduler ticks
            ticks += 1
            next_tick = first_tick + ticks * settings.tick_seconds
            while time.monotonic() < next_tick and len(restored_at) < 3:
                time.sleep(0.005)
    finally:
        load.stop()
        stop.set()
        watcher.join(timeout=5)
    if len(restored_at) < 3:
        raise RuntimeError(f"the release unit was not restored within 40 s: {restored_at}")
    live_at = next(at for state, at in record["history"] if state == "live")
    judged = [line for line in functions.log_lines("health_watchdog")
              if line.get("message") == "health judged" and line["time"] > live_at]
    first_failed = next(line["time"] for line in judged if line.get("verdict") not in ("healthy", "inconclusive"))
    requested = next(line["time"] for line in functions.log_lines("health_watchdog")
                     if line.get("message") == "rollback requested" and line["time"] > live_at)
    rolled = cloud.wait_for(lambda: next((line for line in functions.log_lines("rollback")
                                          if line.get("message") == "rolled back"), None), 20, what="the rollback's log")
    calls = [c for c in functions.by_target["rollback"].state(rollback_calls_before)["calls"] if c[2] >= requested]
    began = min(c[2] for c in calls) if calls else requested
    restored = max(restored_at.values())
    traffic_ops = 2
    rollback_bound = pubsub["median"] + traffic_ops * cloud.scenario.latency.get("traffic", 0.0)
    by_kind: dict[str, int] = {}
    for call in calls:
        if call[2] <= restored:
            by_kind[call[0]] = by_kind.get(call[0], 0) + 1
    say(f"  {bad} degraded; restored to {good} {restored - first_failed:.2f} s after the first failed probe")
    return {
        "good": good, "bad": bad, "tick": settings.tick_seconds, "ticks": ticks,
        "consecutive_failures": config.watchdog.consecutive_failures,
        "detection": requested - first_failed,
        "detection_bound": (config.watchdog.consecutive_failures - 1) * settings.tick_seconds,
        "rollback": restored - requested,
        "rollback_bound": rollback_bound,
        "delivery": began - requested, "pubsub_delivery": pubsub["median"],
        "total": restored - first_failed,
        "restored_after_request": {k: v - requested for k, v in restored_at.items()},
        "rollback_reported_seconds": rolled.get("seconds"),
        "traffic_latency": cloud.scenario.latency.get("traffic", 0.0),
        "remote_calls": by_kind,
    }


def memory(cloud: Any, functions: Functions, workdir: Path) -> dict[str, Any]:
    from shared.install_plan import functions as function_specs

    settings_by_entry = {spec.entry_point: spec.memory for spec in function_specs(cloud.config)}
    bare_dir = workdir / "bare"
    bare = Function("bare", source=bare_dir / "main.py", signature_type="http", count=False).start()
    try:
        post(bare.url, b"{}", {"Content-Type": "application/json"})
        bare_rss = bare.state()["peak_rss"]
    finally:
        bare.stop()
    rows = []
    for target, function in functions.by_target.items():
        setting = settings_by_entry[target]
        limit = int(setting[:-2]) * (MIB if setting.endswith("Mi") else 1024 * MIB)
        state = function.state()
        (workdir / f"{target}-calls.json").write_text(json.dumps(state["calls"]))
        rows.append({"target": target, "peak_rss": state["peak_rss"], "setting": setting, "limit": limit,
                     "libraries": state["libraries"]})
    return {"bare_peak_rss": bare_rss, "rows": rows}


# ---------------------------------------------------------------------------------------------------------------
# 5. frontend publish (child side: `python -m tools.bench --publish`, with STORAGE_EMULATOR_HOST pointing at the latency proxy)
# ---------------------------------------------------------------------------------------------------------------
PUBLISH_SOURCE_BUCKET = "bench-publish-state"
PUBLISH_LIVE_BUCKET = "bench-publish-live"
PUBLISH_SERIAL_BUCKET = "bench-publish-serial"
_EXTENSIONS = (  # (extension, share of files, median size in bytes): a large single-page app's `dist/`
    ("js", 0.42, 9_000), ("css", 0.06, 6_000), ("png", 0.12, 14_000), ("webp", 0.10, 18_000),
    ("svg", 0.16, 2_000), ("woff2", 0.03, 24_000), ("json", 0.08, 3_000), ("mjs", 0.03, 5_000),
)


def frontend_build(files: int, total_bytes: int, seed: int = 7) -> dict[str, bytes]:
    """A Vite-like `dist/`: hashed assets of mixed kinds and sizes (log-normal, a few large chunks), unhashed
    public files, a handful of pages and index.html; `total_bytes` in all."""
    rng = random.Random(seed)
    pages = ["index.html", "404.html", "about/index.html", "pricing/index.html", "robots.txt", "favicon.ico",
             "manifest.webmanifest"]
    public = max(0, files // 20)
    hashed = files - len(pages) - public
    kinds = [rng.choices(_EXTENSIONS, weights=[k[1] for k in _EXTENSIONS])[0] for _ in range(hashed)]
    raw = [k[2] * rng.lognormvariate(0, 1.1) for k in kinds] + [4_000 * rng.lognormvariate(0, 0.8)
                                                                 for _ in range(public + len(pages))]
    scale = total_bytes / sum(raw)
    sizes = [max(64, int(size * scale)) for size in raw]
    out: dict[str, bytes] = {}
    for index, (kind, size) in enumerate(zip(kinds, sizes)):
        data = rng.randbytes(size)
        out[f"assets/chunk{index:04d}-{hashlib.sha256(data).hexdigest()[:8]}.{kind[0]}"] = data
    for index, size in enumerate(sizes[hashed:hashed + public]):
        out[f"images/public-{index:03d}.png"] = rng.randbytes(size)
    for page, size in zip(pages, sizes[hashed + public:]):
        out[page] = rng.randbytes(size)
    return out


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def publish_child(direct_endpoint: str, files: int, megabytes: float, serial_sample: int) -> int:
    """Measures the publish through the proxy (STORAGE_EMULATOR_HOST); prints one JSON line."""
    CALLS.install()
    from concurrent.futures import ThreadPoolExecutor

    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    from shared import config as config_module
    from shared.unit_move import COPY_WORKERS, copy_frontend
    from shared.wiring import Services

    base = config_module.load()
    config = base.replace(state={"bucket": PUBLISH_SOURCE_BUCKET}, frontend={"bucket": PUBLISH_LIVE_BUCKET})
    services = Services(config=config, secrets=config_module.Secrets(None, None, None))
    prefix = f"{config.frontend.releases_prefix}bench/"

    # the build's upload step, straight to fake-gcs-server (setup, not measured)
    direct = storage.Client(project=config.project.id, credentials=AnonymousCredentials(),
                            client_options={"api_endpoint": direct_endpoint})
    for name in (PUBLISH_SOURCE_BUCKET, PUBLISH_LIVE_BUCKET, PUBLISH_SERIAL_BUCKET):
        direct.create_bucket(name)
    build = frontend_build(files, int(megabytes * MIB))
    source_bucket = direct.bucket(PUBLISH_SOURCE_BUCKET)

    def upload(item: tuple[str, bytes]) -> None:
        from localcloud.sample_frontend import content_type

        path, data = item
        source_bucket.blob(prefix + path).upload_from_string(data, content_type=content_type(path) or None)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(upload, build.items()))

    objects = services.objects
    objects.list(PUBLISH_SOURCE_BUCKET, "nothing-here/")  # the client and a first connection, as a warm function has

    def timed(action: Callable[[], Any]) -> tuple[float, Any, int]:
        index = len(CALLS.items)
        begun = time.perf_counter()
        result = action()
        return time.perf_counter() - begun, result, len(CALLS.since(index))

    peers = [int(pid) for pid in os.environ.get("BENCH_PEER_PIDS", "").split(",") if pid]
    peers_before = [cpu_seconds(pid) for pid in peers]
    cpu_before = time.process_time()
    first, copied, first_requests = timed(lambda: copy_frontend(services, prefix)[0])
    first_cpu = time.process_time() - cpu_before
    peers_cpu = [cpu_seconds(pid) - before for pid, before in zip(peers, peers_before)]
    cpu_before = time.process_time()
    second, copied_again, second_requests = timed(lambda: copy_frontend(services, prefix)[0])
    second_cpu = time.process_time() - cpu_before
    list_source, listed, _ = timed(lambda: objects.list(PUBLISH_SOURCE_BUCKET, prefix))
    list_live, _, _ = timed(lambda: objects.list(PUBLISH_LIVE_BUCKET))
    # the serial copy: the same copies, one at a time, on a sample, scaled to the whole build
    sample = sorted(o.name for o in listed)[:serial_sample]
    by_name = {o.name: o for o in listed}
    begun = time.perf_counter()
    index = len(CALLS.items)
    for name in sample:
        path = name[len(prefix):]
        _copy_like_publish(objects, by_name[name], PUBLISH_SOURCE_BUCKET, PUBLISH_SERIAL_BUCKET, path)
    serial_sample_seconds = time.perf_counter() - begun
    serial_requests = len(CALLS.since(index))
    per_copy = serial_sample_seconds / len(sample)
    from shared.frontend import plan_publish

    plan = plan_publish({n[len(prefix):]: "x" for n in by_name}, {})
    workers = COPY_WORKERS
    waves = math.ceil(len(plan.assets) / workers) + math.ceil(max(0, len(plan.pages) - 1) / workers) + 1
    live = direct.bucket(PUBLISH_LIVE_BUCKET).get_blob("index.html")
    print(json.dumps({
        "files": len(build), "bytes": sum(len(d) for d in build.values()), "copied": copied,
        "copied_again": copied_again, "first": first, "first_cpu": first_cpu, "second": second,
        "first_requests": first_requests, "second_requests": second_requests,
        "list_source": list_source, "list_live": list_live,
        "serial_sample": len(sample), "serial_sample_seconds": serial_sample_seconds,
        "serial_requests_per_copy": serial_requests / len(sample), "per_copy": per_copy,
        "serial_estimate": list_source + list_live + per_copy * len(build),
        "workers": workers, "waves": waves,
        "latency_bound": max(list_source, list_live) + waves * per_copy,
        "cpu_bound": first_cpu, "cpu_per_copy": first_cpu / max(1, copied), "peers_cpu": peers_cpu,
        "parallel_bound": max(max(list_source, list_live) + waves * per_copy, first_cpu),
        "listing_floor": max(list_source, list_live, second_cpu), "second_cpu": second_cpu,
        "listing_latency": max(list_source, list_live),
        "index_cache_control": live.cache_control if live else None,
        "downloads": sum(1 for c in CALLS.items if c[0] == "storage" and "alt=media" in c[1]),
        "uploads": sum(1 for c in CALLS.items if c[0] == "storage" and "/upload/" in c[1]),
        "peak_rss": peak_rss_bytes(),
    }), flush=True)
    return 0


def _copy_like_publish(objects: Any, source: Any, source_bucket: str, bucket: str, path: str) -> None:
    """One copy exactly as publish_frontend makes it: server-side, with the listed source's metadata."""
    from shared.frontend import cache_control

    objects.copy(source_bucket, source.name, bucket, path, cache_control=cache_control(path), like=source)


def publish(cloud: Any, settings: Settings, workdir: Path, say: Callable[[str], None]) -> dict[str, Any]:
    proxy = subprocess.Popen(
        [sys.executable, "-m", "tools.bench.latency_proxy", "--target", f"127.0.0.1:{cloud.gcs.port}",
         "--rtt-ms", str(settings.rtt_ms), "--exit-on-stdin-eof"],
        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True)
    try:
        assert proxy.stdout is not None
        address = proxy.stdout.readline().decode().split()[-1]
        env = {**os.environ, "STORAGE_EMULATOR_HOST": f"http://{address}",
               "BENCH_PEER_PIDS": f"{proxy.pid},{cloud.gcs.pid}"}
        out = subprocess.run(
            [sys.executable, "-m", "tools.bench", "--publish", cloud.gcs.endpoint, "--files",
             str(settings.publish_files), "--mb", str(settings.publish_mb), "--serial-sample",
             str(settings.serial_sample)],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        (workdir / "publish.log").write_text(out.stderr)
        if out.returncode != 0:
            raise RuntimeError(f"the publish measurement failed:\n{out.stderr[-3000:]}")
        result = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        if proxy.stdin is not None:
            proxy.stdin.close()
        stop_process_group(proxy)
    result["rtt_ms"] = settings.rtt_ms
    say(f"  publish: {result['copied']} files in {result['first']:.2f} s, again in {result['second']:.2f} s")
    return result


# ---------------------------------------------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------------------------------------------
def machine() -> dict[str, str]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_total = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory_total = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return {"cpus": str(os.cpu_count()), "cpu": cpu or platform.processor(), "memory": memory_total,
            "python": platform.python_version(), "system": f"{platform.system()} {platform.release()}"}


PHASES = ("cold", "webhook", "orchestration", "restore", "memory", "publish", "build")

# Step durations of a botbalance-like release build (seconds), assumed, not measured: a Django image of about 1 GB
# built from scratch and with the previous release's layers, and a pnpm/Vite frontend of a few thousand files.
BUILD_STEPS = {"fetch": 4.0, "image": 180.0, "push": 25.0, "frontend-install": 45.0, "frontend-build": 40.0,
               "frontend-upload": 10.0}
CACHED_IMAGE_SECONDS = 45.0  # the image step when only the app's own layers changed (inline cache hit)


def build_graph() -> dict[str, Any]:
    """The release build's critical path, scheduled by the fake Cloud Build's rules over tagship's own build
    definition (its waitFor graph), against running its steps one after another."""
    from google.cloud.devtools import cloudbuild_v1

    from localcloud.build_checks import schedule
    from shared.build_definition import BuildRequest, release_build

    request = BuildRequest(tag="v1.4.0", commit="c" * 40, repository="acme/botbalance",
                           image="asia-southeast1-docker.pkg.dev/p/app/api", frontend_dir="frontend",
                           frontend_destination="gs://state/frontend/v1.4.0/", timeout_seconds=1200,
                           context="backend", github_token_secret="gh-token")
    build = cloudbuild_v1.Build.from_json(__import__("json").dumps(release_build(request, "p")))
    steps = list(build.steps)
    rows = []
    for label, image_seconds in (("image built from scratch", BUILD_STEPS["image"]),
                                 ("image from the previous release's layers", CACHED_IMAGE_SECONDS)):
        durations = [image_seconds if step.id == "image" else BUILD_STEPS[step.id] for step in steps]
        spans = schedule(steps, durations)
        rows.append({"label": label, "critical": max(end for _, end in spans), "serial": sum(durations)})
    return {"rows": rows, "steps": [step.id for step in steps]}


def run(settings: Settings, say: Callable[[str], None], phases: tuple[str, ...] = PHASES) -> dict[str, Any]:
    """Measures `phases` (all by default) on one local cloud; the publish alone needs only fake-gcs-server."""
    from localcloud.cloud import LocalCloud
    from shared import log

    results: dict[str, Any] = {"machine": machine(), "settings": {
        "latency": settings.latency, "tick_seconds": settings.tick_seconds, "rtt_ms": settings.rtt_ms}}
    workdir = Path(tempfile.mkdtemp(prefix="tagship-bench-"))
    (workdir / "bare").mkdir()
    (workdir / "bare" / "main.py").write_text(BARE_FUNCTION)
    results["workdir"] = str(workdir)
    log.set_stream(open(workdir / "parent.log", "w"))
    started = time.monotonic()
    scenario = [p for p in ("webhook", "orchestration", "restore", "memory") if p in phases]
    if "build" in phases:
        say("7. build graph")
        results["build_graph"] = build_graph()
    cloud_phases = set(phases) - {"build"}
    try:
        if not cloud_phases:
            pass
        elif cloud_phases == {"publish"}:
            from types import SimpleNamespace

            from localcloud.processes import FakeGcsServer

            with FakeGcsServer() as gcs:
                say("5. frontend publish")
                results["publish"] = publish(SimpleNamespace(gcs=gcs), settings, workdir, say)
        else:
            with LocalCloud(functions=False) as cloud:
                say(f"local cloud up in {cloud.started_in:.1f} s; logs in {workdir}")
                if "cold" in phases:
                    say("1. cold start")
                    results["cold_start"] = cold_start(cloud, settings, workdir, say)
                if scenario:
                    _scenario(cloud, settings, workdir, scenario, results, say)
                if "publish" in phases:
                    say("5. frontend publish")
                    results["publish"] = publish(cloud, settings, workdir, say)
    finally:
        log.set_stream(None)
    results["seconds"] = time.monotonic() - started
    return results


def _scenario(cloud: Any, settings: Settings, workdir: Path, phases: list[str], results: dict[str, Any],
              say: Callable[[str], None]) -> None:
    functions = Functions(cloud, workdir).start()
    try:
        if "webhook" in phases:
            say("2. webhook answer")
            results["webhook"] = webhook(cloud, functions, settings, say)
        functions.subscribe()
        results["pubsub"] = pubsub_delivery(cloud, 4 if settings.webhook_samples < 20 else 10)
        say(f"  Pub/Sub push delivery: median {results['pubsub']['median'] * 1000:.0f} ms")
        if "orchestration" in phases or "restore" in phases:
            say("3. orchestration overhead")
            releases = settings.releases if "orchestration" in phases else 1
            orchestrated = orchestration(cloud, functions, settings, results["pubsub"], say, releases=releases)
            if "orchestration" in phases:
                results["orchestration"] = orchestrated
        if "restore" in phases:
            functions.warm("health_watchdog", {"job": "tagship-health"})
            # asks for what is live already: refused once the plan has read its release and its revisions
            functions.warm("rollback", {"to": cloud.live_tag(), "reason": "warm-up", "requested_by": "bench"})
            say("4. time to restore")
            results["restore"] = restore(cloud, functions, settings, results["pubsub"], say)
        if "memory" in phases:
            say("6. memory")
            results["memory"] = memory(cloud, functions, workdir)
    finally:
        functions.stop()


def report(results: dict[str, Any]) -> str:
    lines: list[str] = []
    add = lines.append
    m = results["machine"]
    add("")
    add(f"tagship benchmark: {m['cpus']} CPUs ({m['cpu']}), {m['memory']}, Python {m['python']}, {m['system']}")
    add(f"ran in {results['seconds']:.0f} s; every figure beside its bound, ratio = figure / bound")

    cold = results.get("cold_start")
    if cold:
        add("")
        add(f"1. COLD START  `functions-framework --target ...` (gunicorn, as deployed), fresh process from spawn to its "
            f"first answer, median of {cold['samples']}")
        add(f"   a bare @functions_framework.http function: {ms(cold['bare'])}")
        add(f"   {'target, first request':<58} {'figure':>8} {'bound':>8} {'ratio':>6}")
        add(f"   {'deploy_on_tag, a GitHub ping':<58} {ms(cold['ping']):>8} {ms(cold['bare']):>8} "
            f"{ratio(cold['ping'], cold['bare']):>6}   bound: the bare function")
        for row in cold["rows"]:
            label = f"{row['target']}, {row['first_event']}"
            add(f"   {label:<58} {ms(row['cold']):>8} {ms(row['bound']):>8} {ratio(row['cold'], row['bound']):>6}"
                f"   bare + importing {'+'.join(_short(n) for n in row['needs'])} {ms(row['imports'])}"
                f" + the same event warm {ms(row['warm'])}")
        checks = cold["rows"][0]["libraries"]
        add(f"   Google libraries loaded by deploy_on_tag after a GitHub ping: "
            f"{', '.join(checks['after a GitHub ping']) or 'none'}; after a rejected signature: "
            f"{', '.join(checks['after a rejected signature']) or 'none'}")
        others = sorted({name for row in cold["rows"][1:]
                         for name in row["libraries"]["after an event that is not a Pub/Sub message"]})
        add(f"   by the event targets after an event that is not a Pub/Sub message: {', '.join(others) or 'none'}")
        for row in cold["rows"]:
            extra = sorted(set(row["libraries"]["after its first real event"]) - set(row["needs_load"]))
            add(f"   {row['target']} after its first event: {', '.join(_short(n) for n in row['needs'])}"
                + (f", and also {', '.join(extra)}" if extra else ", nothing more"))

    hook = results.get("webhook")
    if hook:
        add("")
        add(f"2. WEBHOOK ANSWER  warm deploy_on_tag, a signed tag push that starts a release, {hook['samples']} pushes")
        add(f"   {'':<22} {'figure':>9} {'bound':>9} {'ratio':>6}")
        add(f"   {'latency, median':<22} {ms(hook['median']):>9} {ms(hook['bound_median']):>9} "
            f"{ratio(hook['median'], hook['bound_median']):>6}   bound: a bare function's answer "
            f"({ms(hook['bare_median'])}) + recording the release and submitting the build "
            f"({ms(hook['floor_median'])}), same clients")
        add(f"   {'latency, p99':<22} {ms(hook['p99']):>9} {ms(hook['bound_p99']):>9} {ratio(hook['p99'], hook['bound_p99']):>6}")
        add(f"   {'remote calls':<22} {hook['remote_calls']:>9} {hook['bound_calls']:>9} "
            f"{ratio(hook['remote_calls'], hook['bound_calls']):>6}   Slack calls on the path: {hook['slack_calls']}")
        add("   calls of the last push: " + "; ".join(hook["calls_of_last"]))

    orch = results.get("orchestration")
    if orch:
        add("")
        lat = orch["latency"]
        add(f"3. ORCHESTRATION OVERHEAD  set latencies: build {lat['build']} s, migration {lat['migration']} s, "
            f"revision ready {lat['revision_ready']} s, traffic change {lat['traffic']} s; bake {orch['bake_config']} s, "
            f"probed for {orch['bake']:.2f} s")
        parts = " + ".join(f"{k} {v:g}" for k, v in orch["critical_parts"].items())
        add(f"   critical path = {parts} = {orch['rows'][0]['critical_path']:.2f} s")
        add(f"   {'release':<10} {'push -> live':>12} {'bound':>8} {'ratio':>6}   remote calls of deploy_progress")
        for row in orch["rows"]:
            calls = ", ".join(f"{k} {v}" for k, v in sorted(row["remote_calls"].items()))
            add(f"   {row['tag']:<10} {secs(row['push_to_live']):>12} {secs(row['critical_path']):>8} "
                f"{ratio(row['push_to_live'], row['critical_path']):>6}   {calls}")
        last = orch["rows"][-1]
        steps = "  ".join(f"{step} {s:.2f}-{e:.2f}" for step, (s, e) in sorted(last["steps"].items(), key=lambda i: i[1][0]))
        add(f"   {last['tag']} steps (s after push): {steps}")

    rest = results.get("restore")
    if rest:
        add("")
        add(f"4. TIME TO RESTORE  {rest['bad']} degrades once live; watchdog tick every {rest['tick']} s (production: "
            f"60 s), {rest['consecutive_failures']} failed checks in a row to act; traffic change {rest['traffic_latency']} s")
        add(f"   {'':<34} {'figure':>9} {'bound':>9} {'ratio':>6}")
        add(f"   {'detection: first failed probe -> rollback asked':<34}")
        add(f"   {'':<34} {secs(rest['detection']):>9} {secs(rest['detection_bound']):>9} "
            f"{ratio(rest['detection'], rest['detection_bound']):>6}   bound: (failures needed - 1) x tick")
        add(f"   {'rollback: asked -> API, worker, frontend restored':<34}")
        add(f"   {'':<34} {secs(rest['rollback']):>9} {secs(rest['rollback_bound']):>9} "
            f"{ratio(rest['rollback'], rest['rollback_bound']):>6}   bound: the request's Pub/Sub delivery "
            f"({ms(rest['pubsub_delivery'])}) + its 2 traffic changes ({rest['traffic_latency']} s each)")
        parts = ", ".join(f"{k} +{v:.2f} s" for k, v in sorted(rest["restored_after_request"].items(), key=lambda i: i[1]))
        add(f"   restored after the request: {parts}; Pub/Sub delivery to the rollback {rest['delivery']:.2f} s; "
            f"remote calls: {', '.join(f'{k} {v}' for k, v in sorted(rest['remote_calls'].items()))}")
        add(f"   total, first failed probe -> restored: {secs(rest['total'])}")

    pub = results.get("publish")
    if pub:
        add("")
        add(f"5. FRONTEND PUBLISH  {pub['files']:,} files, {pub['bytes'] / MIB:.1f} MiB, {pub['rtt_ms']:g} ms round trip "
            f"added in front of fake-gcs-server; {pub['workers']} copy workers")
        add(f"   {'':<30} {'figure':>9} {'bound':>9} {'ratio':>6}")
        add(f"   {'parallel copy vs serial copy':<30} {secs(pub['first']):>9} {secs(pub['serial_estimate']):>9} "
            f"{ratio(pub['first'], pub['serial_estimate']):>6}   serial measured on {pub['serial_sample']} files, "
            f"scaled ({ms(pub['per_copy'])} a copy)")
        add(f"   {'parallel copy vs its ideal':<30} {secs(pub['first']):>9} {secs(pub['parallel_bound']):>9} "
            f"{ratio(pub['first'], pub['parallel_bound']):>6}   ideal: the larger of listings + {pub['waves']} waves of "
            f"{pub['workers']} copies, index.html last ({secs(pub['latency_bound'])}), and the CPU the client used "
            f"({secs(pub['cpu_bound'])}, {pub['cpu_per_copy'] * 1000:.1f} ms a copy: one interpreter, one core at most)")
        add(f"   {'second publish vs first':<30} {secs(pub['second']):>9} {secs(pub['first']):>9} "
            f"{ratio(pub['second'], pub['first']):>6}   {pub['copied_again']} files copied the second time")
        add(f"   {'second publish vs listing':<30} {secs(pub['second']):>9} {secs(pub['listing_floor']):>9} "
            f"{ratio(pub['second'], pub['listing_floor']):>6}   floor: the larger of listing both sides side by side "
            f"({secs(pub['listing_latency'])}) and the CPU the client used ({secs(pub['second_cpu'])})")
        add(f"   requests: first {pub['first_requests']:,} ({pub['first_requests'] / max(1, pub['copied']):.2f} a file), "
            f"second {pub['second_requests']}; serial {pub['serial_requests_per_copy']:.1f} a copy; "
            f"downloads {pub['downloads']}, uploads {pub['uploads']} (server-side copies); CPU during the parallel copy: "
            f"client {pub['first_cpu']:.1f} s, proxy {pub['peers_cpu'][0]:.1f} s, fake-gcs-server {pub['peers_cpu'][1]:.1f} s "
            f"on {results['machine']['cpus']} cores; index.html Cache-Control {pub['index_cache_control']!r}")

    mem = results.get("memory")
    if mem:
        add("")
        add("6. MEMORY  peak resident memory of each function's process over its scenario")
        add(f"   {'function':<16} {'peak RSS':>9} {'setting':>8} {'ratio':>6}")
        for row in mem["rows"]:
            add(f"   {row['target']:<16} {row['peak_rss'] / MIB:>5.0f} MiB {row['setting']:>8} "
                f"{ratio(row['peak_rss'], row['limit']):>6}")
        extra = f"; deploy_progress publishing {pub['files']:,} files: {pub['peak_rss'] / MIB:.0f} MiB" if pub else ""
        add(f"   bare function, same server: {mem['bare_peak_rss'] / MIB:.0f} MiB{extra}")
    graph = results.get("build_graph")
    if graph:
        add("")
        add("7. BUILD GRAPH  tagship's release build scheduled as Cloud Build runs it (waitFor), for botbalance-like "
            "step durations (assumed, not measured)")
        add(f"   steps: {', '.join(graph['steps'])}")
        add(f"   {'':<44} {'critical path':>13} {'steps in a line':>15} {'ratio':>6}")
        for row in graph["rows"]:
            add(f"   {row['label']:<44} {secs(row['critical']):>13} {secs(row['serial']):>15} "
                f"{ratio(row['critical'], row['serial']):>6}")
    add("")
    return "\n".join(lines)


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer, smaller samples (a smoke run)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--only", help=f"a comma-separated subset of {','.join(PHASES)}")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--source", help=argparse.SUPPRESS)
    parser.add_argument("--signature-type", help=argparse.SUPPRESS)
    parser.add_argument("--count", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--publish", help=argparse.SUPPRESS)
    parser.add_argument("--files", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--mb", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--serial-sample", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return serve(args.serve, args.source, args.signature_type, args.count)
    if args.publish:
        return publish_child(args.publish, args.files, args.mb, args.serial_sample)
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    settings = QUICK if args.quick else Settings()

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    phases = tuple(p.strip() for p in args.only.split(",")) if args.only else PHASES
    unknown = sorted(set(phases) - set(PHASES))
    if unknown:
        parser.error(f"--only: unknown phase {unknown[0]}; expected some of {', '.join(PHASES)}")
    results = run(settings, say, phases)
    print(report(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
