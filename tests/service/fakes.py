"""Recording fakes of tagship's own ports, for service tests that assert on outcomes."""
from __future__ import annotations

import builtins
import copy
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from shared.adapters.slack import MessageRef, Notifier
from shared.config import Secrets, load
from shared.core.traffic import serving
from shared.errors import NotFound, PreconditionFailed
from shared.ports import (
    Builds,
    CloudRun,
    ExecutionState,
    Http,
    HttpAnswer,
    Metrics,
    Objects,
    Publisher,
    Record,
    RecordStore,
    ServiceState,
    StoredObject,
    TrafficFigures,
    TrafficTarget,
)
from shared.errors import PermanentError, TransientError
from shared.ports import Deployments
from shared.state import StateStore
from shared.wiring import Services


class FakeRecords:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.objects: dict[str, tuple[dict[str, Any], int]] = {}
        self.written_at: dict[str, float] = {}
        self._clock = clock
        self._lock = threading.Lock()
        self._generation = 0

    def read(self, name: str) -> Record | None:
        with self._lock:
            if name not in self.objects:
                return None
            data, generation = self.objects[name]
            return Record(copy.deepcopy(data), generation)

    def _write(self, name: str, data: dict[str, Any], generation: int) -> Record:
        with self._lock:
            current = self.objects.get(name)
            if (generation == 0 and current is not None) or (generation and (current is None or current[1] != generation)):
                raise PreconditionFailed(f"{name}: generation {generation} does not match")
            self._generation += 1
            self.objects[name] = (copy.deepcopy(data), self._generation)
            self.written_at[name] = self._clock()
            return Record(copy.deepcopy(data), self._generation)

    def create(self, name: str, data: dict[str, Any]) -> Record:
        return self._write(name, data, 0)

    def swap(self, name: str, data: dict[str, Any], generation: int) -> Record:
        return self._write(name, data, generation)

    def list(self, prefix: str) -> list[str]:
        with self._lock:
            return sorted(name for name in self.objects if name.startswith(prefix))

    def changed_since(self, prefix: str, since: float) -> builtins.list[str]:
        with self._lock:
            return sorted(name for name in self.objects if name.startswith(prefix) and self.written_at.get(name, 0.0) >= since)


@dataclass
class FakeService:
    revisions: dict[str, str]  # revision -> image
    traffic: dict[str, int]
    tags: dict[str, str] = field(default_factory=dict)


class FakeRun:
    """Cloud Run in memory: revisions by name, traffic by percent, executions that end as told."""

    def __init__(self, services: list[str], job: str, base_url: str = "http://run.test") -> None:
        self.services = {name: FakeService({f"{name}-00001-abc": "image@initial"}, {f"{name}-00001-abc": 100})
                         for name in services}
        self.base_url = base_url
        self.job = job
        self.executions: list[dict[str, Any]] = []
        self.migration_outcome = "ok"
        self.polls_until_done = 0  # how many reads an execution stays running
        self.calls: list[tuple[str, Any]] = []

    def service(self, service: str) -> ServiceState:
        svc = self.services[service]
        latest = list(svc.revisions)[-1]
        return ServiceState(service, f"{self.base_url}/s/{service}", svc.revisions[latest], dict(svc.traffic),
                            dict(svc.tags), {t: f"{self.base_url}/t/{t}---{service}" for t in svc.tags}, latest)

    def revision_ready(self, service: str, revision: str) -> bool | None:
        return True if revision in self.services[service].revisions else None

    def deploy_revision(self, service: str, revision: str, image: str, *, tag: str, command: tuple[str, ...] = (),
                        with_traffic: bool = False) -> ServiceState:
        self.calls.append(("deploy_revision", (service, revision)))
        svc = self.services[service]
        svc.revisions.setdefault(revision, image)
        svc.tags[tag] = revision
        if with_traffic:
            svc.traffic = {revision: 100}
        return self.service(service)

    def set_traffic(self, service: str, targets: list[TrafficTarget]) -> ServiceState:
        self.calls.append(("set_traffic", (service, tuple((t.revision, t.percent) for t in targets))))
        svc = self.services[service]
        for target in targets:
            if target.revision not in svc.revisions:
                raise NotFound(target.revision)
        svc.traffic = {t.revision: t.percent for t in targets if t.percent}
        return self.service(service)

    def start_migration(self, job: str, image: str, command: tuple[str, ...]) -> str:
        name = f"projects/p/locations/r/jobs/{job}/executions/{job}-{len(self.executions) + 1:05d}"
        self.executions.append({"name": name, "image": image, "outcome": self.migration_outcome,
                                "polls_left": self.polls_until_done})
        return name

    def _state(self, execution: dict[str, Any]) -> ExecutionState:
        if execution["polls_left"] > 0:
            execution["polls_left"] -= 1
            return ExecutionState(execution["name"], False, False, "", execution["image"])
        ok = execution["outcome"] == "ok"
        return ExecutionState(execution["name"], True, ok, "" if ok else "relation already exists", execution["image"])

    def execution(self, name: str) -> ExecutionState:
        return next(self._state(e) for e in self.executions if e["name"] == name)

    def find_execution(self, job: str, image: str) -> ExecutionState | None:
        for execution in reversed(self.executions):
            if execution["image"] == image:
                return self._state(execution)
        return None

    def serving(self, service: str) -> str:
        traffic = self.services[service].traffic
        return serving(traffic, "")


class FakeObjects:
    def __init__(self) -> None:
        self.buckets: dict[str, dict[str, tuple[bytes, str]]] = {}
        self.copies: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def put(self, bucket: str, name: str, data: bytes) -> None:
        import hashlib

        with self._lock:
            self.buckets.setdefault(bucket, {})[name] = (data, hashlib.md5(data).hexdigest())

    def list(self, bucket: str, prefix: str = "") -> list[StoredObject]:
        with self._lock:
            return [StoredObject(name, md5, len(data), None) for name, (data, md5) in sorted(self.buckets.get(bucket, {}).items())
                    if name.startswith(prefix)]

    def copy(self, source_bucket: str, source: str, bucket: str, name: str, *, cache_control: str,
             like: StoredObject | None = None) -> None:
        with self._lock:
            self.copies.append((source, name))
            self.buckets.setdefault(bucket, {})[name] = self.buckets[source_bucket][source]

    def live(self, bucket: str) -> dict[str, str]:
        return {o.name: o.md5_hash or "" for o in self.list(bucket)}


class FakePublisher:
    def __init__(self) -> None:
        self.published: list[tuple[str, dict[str, Any]]] = []

    def publish(self, topic: str, payload: dict[str, Any], attributes: dict[str, str] | None = None) -> str:
        self.published.append((topic, payload))
        return str(len(self.published))


class FakeNotifier:
    def __init__(self, down: bool = False) -> None:
        self.posts: list[tuple[str, MessageRef | None]] = []
        self.updates: dict[str, str] = {}
        self.blocks: dict[str, list[dict[str, Any]]] = {}  # ts -> the blocks the message shows now
        self.down = down
        self.groups: dict[str, tuple[str, ...]] = {}  # Slack user group id -> its members

    def group_members(self, group_id: str) -> tuple[str, ...] | None:
        return None if self.down else self.groups.get(group_id)

    def post(self, text: str, *, thread: MessageRef | None = None,
             blocks: list[dict[str, Any]] | None = None) -> MessageRef | None:
        if self.down:
            return None
        self.posts.append((text, thread))
        if blocks is not None:
            self.blocks[f"{len(self.posts)}.0"] = blocks
        return MessageRef("C1", f"{len(self.posts)}.0")

    def update(self, ref: MessageRef, text: str, blocks: list[dict[str, Any]] | None = None) -> bool:
        if self.down:
            return False
        self.updates[ref.ts] = text
        self.blocks[ref.ts] = blocks or []
        return True

    def thread(self, ts: str) -> list[str]:
        return [text for text, ref in self.posts if ref is not None and ref.ts == ts]


class FakeHttp:
    """Answers health probes per URL prefix: `unhealthy` holds the prefixes that fail."""

    def __init__(self) -> None:
        self.unhealthy: set[str] = set()
        self.requests: list[str] = []

    def request(self, url: str, *, method: str = "GET", headers: dict[str, str] | None = None, timeout: float = 5.0) -> HttpAnswer:
        self.requests.append(url)
        if any(url.startswith(prefix) for prefix in self.unhealthy):
            return HttpAnswer(503, b'{"status":"error","components":{"db":"error: connection refused"}}', {}, 1.0)
        return HttpAnswer(200, b'{"status":"ok","components":{"db":"ok","redis":"ok","celery":"ok"}}',
                          {"access-control-allow-origin": "https://app.botbalance.io"}, 1.0)


class FakeMetrics:
    """Monitoring by revision: `served` maps a revision to what it served in any window asked (none: nothing);
    `windows` records each (revision, start, end) asked."""

    def __init__(self) -> None:
        self.served: dict[str, TrafficFigures] = {}
        self.windows: list[tuple[str | None, float, float]] = []

    def figures(self, service: str, window_seconds: int, revision: str | None = None,
                lag_seconds: float = 0.0) -> TrafficFigures:
        return self.served.get(revision or "", TrafficFigures(0, {}, None))

    def window_figures(self, service: str, revision: str | None, start: float, end: float) -> TrafficFigures:
        self.windows.append((revision, start, end))
        return self.served.get(revision or "", TrafficFigures(0, {}, None))


class FakeBuilds:
    """Builds as Cloud Build would answer for them: `answers` maps a build id to its GetBuild answer."""

    def __init__(self) -> None:
        self.answers: dict[str, Any] = {}
        self.submitted: list[Any] = []
        self.reads: list[str] = []
        self.attempts: dict[str, int] = {}  # build id -> the release attempt it was submitted for

    def submit(self, request: Any) -> tuple[str, str]:
        self.submitted.append(request)
        build_id = f"b-{request.tag}" + (f"-{request.attempt}" if request.attempt > 1 else "")
        self.attempts[build_id] = request.attempt
        return build_id, f"https://log/{build_id}"

    def find(self, tag: str, commit: str, attempt: int = 1) -> tuple[str, str] | None:
        for build_id, answer in self.answers.items():
            if answer.tag == tag and answer.commit == commit and self.attempts.get(build_id, 1) == attempt:
                return build_id, answer.log_url
        return None

    def status(self, build_id: str) -> Any:
        self.reads.append(build_id)
        if build_id not in self.answers:
            raise NotFound(f"build {build_id} not found")
        return self.answers[build_id]


class FakeDeployments:
    """GitHub's deployments of one repository in memory: each deployment's ref, environment, payload and statuses.
    `down` makes every call raise TransientError, `refusing` a PermanentError (as the adapter maps GitHub's
    answers)."""

    def __init__(self) -> None:
        self.deployments: dict[int, dict[str, Any]] = {}
        self.down = False
        self.refusing = ""
        self.calls = 0
        self.while_posting: Callable[[], None] | None = None  # runs inside the next status post, once GitHub took it

    def _answer(self) -> None:
        self.calls += 1
        if self.down:
            raise TransientError("GitHub did not answer to create the deployment on botbalance/botbalance: "
                                 "ConnectionError")
        if self.refusing:
            raise PermanentError(self.refusing)

    def find(self, ref: str, environment: str, marker: dict[str, str]) -> int | None:
        self._answer()
        for number, deployment in self.deployments.items():
            if (deployment["ref"], deployment["environment"]) == (ref, environment) and all(
                    deployment["payload"].get(k) == v for k, v in marker.items()):
                return number
        return None

    def create(self, ref: str, environment: str, marker: dict[str, str], description: str, *,
               production: bool) -> int:
        self._answer()
        number = len(self.deployments) + 1
        self.deployments[number] = {"ref": ref, "environment": environment, "payload": dict(marker),
                                    "production": production, "statuses": []}
        return number

    def set_status(self, deployment_id: int, state: str, description: str, *, environment_url: str,
                   log_url: str) -> None:
        self._answer()
        assert len(description) <= 140
        self.deployments[deployment_id]["statuses"].append(
            {"state": state, "description": description, "environment_url": environment_url, "log_url": log_url})
        if self.while_posting is not None:  # GitHub has taken it; the answer is not back yet
            nested, self.while_posting = self.while_posting, None
            nested()

    def states(self, deployment_id: int = 1) -> list[str]:
        return [status["state"] for status in self.deployments[deployment_id]["statuses"]]


class World:
    """Every port faked, wired into the real Services."""

    def __init__(self, *, slack_down: bool = False, github: bool = False) -> None:
        base = load()
        self.config = base.replace(deploy={"smoke_timeout_seconds": 0.05, "smoke_interval_seconds": 0.01,
                                           "bake_seconds": 0.0, "probe_interval_seconds": 0.01},
                                   canary={"steps": ()},  # the example's canary on only where a test asks
                                   watchdog={"fast_probe_seconds": 0.0},  # one look per tick unless asked
                                   github={"deployments": github})
        self.now = 1000.0
        self.records = FakeRecords(clock=lambda: self.now)
        self.store = StateStore(self.records)
        self.run = FakeRun([self.config.api.service, self.config.worker.service], self.config.migrations.job)
        self.objects = FakeObjects()
        self.publisher = FakePublisher()
        self.notifier = FakeNotifier(down=slack_down)
        self.http = FakeHttp()
        self.builds = FakeBuilds()
        self.metrics = FakeMetrics()
        self.deployments = FakeDeployments()
        self.now = 1000.0
        self.services = Services(
            config=self.config, secrets=Secrets("secret", None, None), clock=self.clock, sleep=lambda s: None,
            overrides={"store": self.store, "run": self.run, "objects": self.objects, "publisher": self.publisher,
                       "notifier": self.notifier, "http": self.http,
                       "builds": self.builds, "metrics": self.metrics, "deployments": self.deployments},
        )
        self.objects.put(self.config.frontend.bucket, "index.html", b"<html>manual</html>")

    def clock(self) -> float:
        self.now += 0.5
        return self.now

    def built(self, tag: str, commit: str = "c0ffee", *, files: dict[str, bytes] | None = None) -> None:
        """A release whose build succeeded: its record, its image, its frontend uploaded to its prefix."""
        from shared.release import new_release

        release = new_release(tag, commit, "alice", f"d-{tag}", self.clock()).but(
            build_id=f"b-{tag}", image=f"image@{tag}")
        self.store.create_release(release)
        prefix = f"{self.config.frontend.releases_prefix}{tag}/"
        for path, data in (files or {"index.html": f"<html>{tag}</html>".encode(),
                                     f"assets/index-{tag.replace('.', '')}abcdef.js": tag.encode(),
                                     "assets/vendor-00000000.js": b"vendor"}).items():
            self.objects.put(self.config.state.bucket, prefix + path, data)

    def state(self, tag: str) -> str:
        found = self.store.release(tag)
        assert found is not None
        return found[0].state


if TYPE_CHECKING:  # mypy (in make test) checks that each fake still matches its port
    _records: RecordStore = FakeRecords()
    _run: CloudRun = FakeRun([], "")
    _objects: Objects = FakeObjects()
    _publisher: Publisher = FakePublisher()
    _notifier: Notifier = FakeNotifier()
    _http: Http = FakeHttp()
    _builds: Builds = FakeBuilds()
    _metrics: Metrics = FakeMetrics()


# --- what `python main.py doctor` reads ------------------------------------------------------------------------


class _Recorded:
    """Records each read as (method, arguments); a method named in `unreadable` raises CannotRead instead."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.unreadable: set[str] = set()

    def _called(self, method: str, *args: Any) -> None:
        from shared.errors import CannotRead

        self.calls.append((method, args))
        if method in self.unreadable:
            raise CannotRead(f"{method}: PermissionDenied: 403 the caller does not have permission")


class FakeProject(_Recorded):
    """A project as `python main.py setup` leaves it for `config`, with the services tagship expects (a worker
    with min instances 1 and CPU always allocated); change its dicts to break it."""

    def __init__(self, config: Any) -> None:
        from shared.install_plan import CHANNEL_NAME
        from shared.install_policy import alert_policy
        from shared.ports import BucketFacts, ChannelFacts, PolicyFacts, RunResource

        super().__init__()
        c = config
        kind = "pool" if c.worker.kind == "pool" else "service"
        self.resources: dict[tuple[str, str], RunResource] = {
            ("service", c.api.service): RunResource("service", c.api.service, ("",), 0, True, "https://api.run.test",
                                                    {"v1-0-0-abcdefgh": "https://v1-0-0-abcdefgh---api.run.test"}),
            (kind, c.worker.service): RunResource(kind, c.worker.service, ("",), 1, False),
            ("job", c.migrations.job): RunResource("job", c.migrations.job, ("",), 0, False),
        }
        self.buckets = {c.state.bucket: BucketFacts(c.state.bucket, "", ""),
                        c.frontend.bucket: BucketFacts(c.frontend.bucket, "index.html", "index.html")}
        self.topics = {t: ["https://eventarc.push.test/" + t] for t in
                       (c.topics.builds, c.topics.progress, c.topics.health, c.topics.rollback)}
        channel = f"projects/{c.project.id}/notificationChannels/1"
        self.channels = [ChannelFacts(channel, CHANNEL_NAME, "pubsub",
                                      f"projects/{c.project.id}/topics/{c.topics.rollback}", True)]
        policy: dict[str, Any] = alert_policy(c)
        self.policies = [PolicyFacts("projects/p/alertPolicies/1", str(policy["displayName"]), True,
                                     dict(policy["userLabels"]), (channel,))]

    def run_resource(self, kind: str, name: str) -> Any:
        self._called("run_resource", kind, name)
        return self.resources.get((kind, name))

    def bucket(self, name: str) -> Any:
        self._called("bucket", name)
        return self.buckets.get(name)

    def topic_exists(self, topic: str) -> bool:
        self._called("topic_exists", topic)
        return topic in self.topics

    def push_endpoints(self, topic: str) -> builtins.list[str]:
        self._called("push_endpoints", topic)
        return list(self.topics.get(topic, []))

    def notification_channels(self) -> builtins.list[Any]:
        self._called("notification_channels")
        return list(self.channels)

    def alert_policies(self) -> builtins.list[Any]:
        self._called("alert_policies")
        return list(self.policies)


class FakeInventory(_Recorded):
    """APIs, IAM, secrets and the scheduler as setup leaves them for `config`."""

    def __init__(self, config: Any) -> None:
        from shared.core.doctor import project_grants
        from shared.install_plan import APIS, SLACK_SECRET, WEBHOOK_SECRET, plan
        from shared.ports import SchedulerJob

        super().__init__()
        steps = plan(config)
        self.apis = set(APIS)
        self.members: dict[str, set[str]] = {}
        for member, role, _ in project_grants(steps):
            self.members.setdefault(role, set()).add(member)
        self.accounts = {s.check[s.check.index("describe") + 1] for s in steps
                         if s.title.startswith("service account ") and s.check}
        self.versions: dict[str, int] = {WEBHOOK_SECRET: 1, SLACK_SECRET: 2}
        self.job: SchedulerJob | None = SchedulerJob(
            "tagship-health", "* * * * *", f"projects/{config.project.id}/topics/{config.topics.health}", "ENABLED")

    def enabled_apis(self) -> frozenset[str]:
        self._called("enabled_apis")
        return frozenset(self.apis)

    def project_members(self, role: str) -> frozenset[str]:
        self._called("project_members", role)
        return frozenset(self.members.get(role, set()))

    def service_accounts(self) -> frozenset[str]:
        self._called("service_accounts")
        return frozenset(self.accounts)

    def secret_versions(self, secret: str) -> int | None:
        self._called("secret_versions", secret)
        return self.versions.get(secret)

    def scheduler_job(self, location: str, name: str) -> Any:
        self._called("scheduler_job", location, name)
        return self.job


class FakeSlackAccess(_Recorded):
    def __init__(self, channel: str = "deploys") -> None:
        from shared.ports import SlackChannel, SlackIdentity

        super().__init__()
        self.me = SlackIdentity(True, "", "U0BOT", frozenset({"chat:write", "channels:read"}))
        self.known: dict[str, SlackChannel] = {channel: SlackChannel("C0DEPLOYS1", channel, True, False)}

    def identity(self) -> Any:
        self._called("identity")
        return self.me

    def channel(self, channel: str) -> Any:
        self._called("channel", channel)
        return self.known.get(channel.lstrip("#"))


def _typed_as_ports(config: Any) -> None:
    """mypy checks the doctor's fakes against their ports here."""
    from shared.ports import Inventory, ProjectReader, SlackAccess

    project: ProjectReader = FakeProject(config)
    inventory: Inventory = FakeInventory(config)
    slack: SlackAccess = FakeSlackAccess()
    del project, inventory, slack

    _deployments: Deployments = FakeDeployments()
