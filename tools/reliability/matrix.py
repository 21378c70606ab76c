"""The reliability matrix: every step of the deploy and of the rollback crossed with every kind of fault, the races,
and Slack down throughout, each run on a fresh local cloud whose every delivery is duplicated and reordered, each
judged by the invariants of `tools.reliability.invariants`; then the hostile-input fuzzing of every target, of the
names derived from tags and of every source of outside text (`tests.reliability.test_fuzz.run_fuzzing`).

    python -m tools.reliability              # a seeded slice (every step, every fault kind, the races), then the fuzzing
    python -m tools.reliability --full       # every scenario of the matrix
    python -m tools.reliability --seed 7 --only rollback/   # scenarios whose name contains "rollback/"
    python -m tools.reliability --full --skip state/        # every scenario but the state axis's

Prints one row per scenario (scenario, faults injected, deliveries, invariant results) and ends with
`N scenarios, N passed, N failed` and the fuzz cases tried per target. Exits 1 when anything failed.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import random
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from tools.reliability.faults import (
    CONDITIONS, DIES, KINDS, LEASE_EXPIRY, PERMANENT, PERMANENT_WHILE, UNREADABLE, WRONG_SHAPE, FaultHarness, Target,
)
from tools.reliability.invariants import Result, Seen, World, check, initial_world, read_state

LATENCY = {"build": 0.2, "migration": 0.1, "revision_ready": 0.05}
ENDED = ("live", "failed", "rolled_back", "superseded")
RUN = "google.cloud.run.v2"
UPDATE_SERVICE = f"{RUN}.Services/UpdateService"
DEFAULT_SEED = 20240611
SLICE_SIZE = 14  # scenarios in the default slice (and the test suite's), besides the races
CANARY_SLICE = 4  # canary steps and controls in the default slice (seeded)


# -- the steps: where in the deploy and the rollback a fault strikes ---------------------------------------------
@dataclass(frozen=True)
class Step:
    phase: str  # deploy | rollback | watch
    name: str
    target: Callable[["Run"], Target]
    kinds: tuple[str, ...] = KINDS
    why: str = ""


def _storage_write(name: str, *, create: bool | None = None) -> str:
    """A Storage upload of the state object `name` (a create-if-absent, a compare-and-swap, or either)."""
    condition = {True: r"ifGenerationMatch=0\b", False: r"ifGenerationMatch=[1-9]", None: ""}[create]
    return rf"^POST /upload/storage/v1/b/[^/]+/o\?.*{condition}.*\"name\": \"{name}\""


def _copy_to_live(run: "Run") -> str:
    return rf"^POST /storage/v1/b/[^/]+/o/.+/(copyTo|rewriteTo)/b/{run.local.config.frontend.bucket}/o/"


DEPLOY_STEPS = (
    Step("deploy", "record", lambda r: Target.storage(_storage_write(r"releases/v1\.1\.0\.json", create=True)),
         tuple(k for k in KINDS if k != LEASE_EXPIRY), "the webhook's create-if-absent of the release record"),
    Step("deploy", "build", lambda r: Target.grpc("google.devtools.cloudbuild.v1.CloudBuild/CreateBuild"),
         tuple(k for k in KINDS if k != LEASE_EXPIRY), "the webhook's build submission"),
    Step("deploy", "migrate", lambda r: Target.grpc(f"{RUN}.Jobs/RunJob"), why="the migration job's execution"),
    Step("deploy", "migrate-wait", lambda r: Target.grpc(f"{RUN}.Executions/GetExecution"),
         why="waiting for the migration to end"),
    Step("deploy", "candidate", lambda r: Target.grpc(UPDATE_SERVICE, nth=1), why="the API's tagged no-traffic revision"),
    Step("deploy", "api-traffic", lambda r: Target.grpc(UPDATE_SERVICE, nth=2), why="all the API traffic to it"),
    Step("deploy", "worker", lambda r: Target.grpc(UPDATE_SERVICE, nth=3), why="the worker's revision with its traffic"),
    Step("deploy", "publish", lambda r: Target.storage(_copy_to_live(r)), why="the frontend's copy to the live bucket"),
    Step("deploy", "go-live", lambda r: Target.storage(_storage_write("pointer.json")), why="the live pointer"),
    Step("deploy", "slack", lambda r: Target.slack("chat.postMessage", "Migrations"), why="the release thread's messages"),
)
ROLLBACK_STEPS = (
    Step("rollback", "lease", lambda r: Target.storage(_storage_write("lease.json") + r'.*"owner": "rollback-'),
         why="taking the lease"),
    Step("rollback", "revisions", lambda r: Target.grpc(f"{RUN}.Revisions/GetRevision"),
         why="checking the target's revisions are ready"),
    Step("rollback", "api-traffic", lambda r: Target.grpc(UPDATE_SERVICE, nth=1), why="the API back"),
    Step("rollback", "worker-traffic", lambda r: Target.grpc(UPDATE_SERVICE, nth=2), why="the worker back"),
    Step("rollback", "frontend", lambda r: Target.storage(_copy_to_live(r)), why="the frontend re-published"),
    Step("rollback", "pointer", lambda r: Target.storage(_storage_write("pointer.json")), why="the live pointer back"),
    Step("rollback", "mark", lambda r: Target.storage(_storage_write(r"releases/v1\.1\.0\.json", create=False)),
         why="the bad release marked rolled back"),
    Step("rollback", "slack", lambda r: Target.slack("chat.postMessage", "Rolled back"),
         why="telling the channel and the thread"),
)
WATCH_STEPS = (
    Step("watch", "metrics", lambda r: Target.grpc("google.monitoring.v3.MetricService/ListTimeSeries"),
         tuple(k for k in KINDS if k != LEASE_EXPIRY), "the watchdog's Monitoring figures"),
)


# -- one scenario's run -----------------------------------------------------------------------------------------
class Run:
    """What a scenario does to the local cloud: push tags as GitHub would, publish requests, wait for calm."""

    def __init__(self, harness: FaultHarness, local: Any) -> None:
        self.harness = harness
        self.local = local
        self.tags: list[str] = []
        self.initial = initial_world(local)

    def push(self, tag: str, **behaviour: Any) -> int:
        """Delivers the tag push; a 5xx is redelivered (the same delivery, as a person does from GitHub's page)."""
        delivery = f"delivery-{tag}-{self.harness.seed}"
        if tag not in self.tags:
            self.tags.append(tag)
        status = 0
        for attempt in range(8):  # a dead instance's replacement takes a few seconds to start
            status = self.local.push_tag(tag, delivery_id=delivery, **behaviour)
            if status < 500:
                return status
            time.sleep(min(0.5 * (attempt + 1), 2.0))
        return status

    def records(self) -> dict[str, dict[str, Any]]:
        objects, _ = read_state(self.local)
        return {name[len("releases/"):-len(".json")]: data for name, data in objects.items() if name.startswith("releases/")}

    def state(self, tag: str) -> str | None:
        return (self.records().get(tag) or {}).get("state")

    def wait(self, predicate: Callable[[], Any], timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if predicate():
                    return True
            except Exception:  # noqa: BLE001 - a read failing mid-scenario is retried until the deadline
                pass
            time.sleep(0.1)
        return False

    def serve(self, tag: str, **behaviour: Any) -> None:
        """Pushes `tag` and waits until it has ended (live, for a healthy app)."""
        self.push(tag, **behaviour)
        self.wait(lambda: self.state(tag) in ENDED)

    def rollback(self, payload: dict[str, Any]) -> None:
        self.local.publish(self.local.config.topics.rollback, payload)

    def tick(self, times: int = 2) -> None:
        """The scheduler's ticks (the watchdog), each given time to land."""
        for _ in range(times):
            self.local.tick_watchdog()
            time.sleep(0.3)

    def mend(self) -> list[str]:
        """What the channel told a person to do about a corrupt record: `state check`, then `state repair` each
        one it names (the CLI, in-process, against the local cloud)."""
        import io

        import cli

        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            cli.main(["--config", self.local.config_path, "state", "check"])
        names = [line.split()[1].rstrip(":") for line in out.getvalue().splitlines() if line.startswith("corrupt ")]
        for name in names:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                cli.main(["--config", self.local.config_path, "state", "repair", name, "--by", "matrix"])
        return names

    def drive(self, tag: str) -> None:
        self.local.publish(self.local.config.topics.progress, {"kind": "drive", "tag": tag})

    def settle(self, timeout: float = 90.0) -> bool:
        """Waits for calm: every pushed tag ended, no push in flight or arriving for a while."""
        def calm() -> bool:
            records = self.records()
            return all(records.get(tag, {}).get("state") in ENDED for tag in self.tags if tag in records)

        return self.harness.settle(quiet=1.6, timeout=timeout, done=calm)


@dataclass
class Scenario:
    name: str
    run: Callable[[Run], World]
    faults: str  # what is injected, for the table
    child: bool = False  # the functions run in a process of their own (a fault kills it)
    options: dict[str, Any] = field(default_factory=dict)  # the local cloud's (a config with canary steps)


@dataclass
class Outcome:
    name: str
    faults: str
    fired: list[str]
    deliveries: int
    duplicates: int
    results: list[Result]
    seconds: float
    error: str = ""
    story: list[str] = field(default_factory=list)  # the functions' warnings and errors, when it failed

    @property
    def passed(self) -> bool:
        return not self.error and all(r.ok for r in self.results)


# -- expected outcomes ------------------------------------------------------------------------------------------
def serving(tag: str | None, *, states: dict[str, tuple[str, ...]] | None = None) -> Callable[[Seen], str | None]:
    def judge(seen: Seen) -> str | None:
        if seen.serving.get("api") != tag or seen.serving.get("worker") != tag:
            return f"expected {tag} serving, found api {seen.serving.get('api')}, worker {seen.serving.get('worker')}"
        for name, allowed in (states or {}).items():
            if seen.state(name) not in allowed:
                return f"expected {name} {' or '.join(map(str, allowed))}, found {seen.state(name)}"
        return None

    return judge


def either(*judges: Callable[[Seen], str | None]) -> Callable[[Seen], str | None]:
    def judge(seen: Seen) -> str | None:
        found = [j(seen) for j in judges]
        return None if any(f is None for f in found) else " / ".join(str(f) for f in found)

    return judge


NEW_LIVE = serving("v1.1.0", states={"v1.1.0": ("live",)})
NEW_FAILED_OLD_SERVES = serving("v1.0.0", states={"v1.1.0": ("failed",), "v1.0.0": ("live",)})
NEVER_STARTED = serving("v1.0.0", states={"v1.0.0": ("live",), "v1.1.0": (None,)})  # a start refused, told, not retried
ROLLED_BACK = serving("v1.0.0", states={"v1.1.0": ("rolled_back",)})
NOT_ROLLED_BACK_WHOLE = serving("v1.1.0", states={"v1.1.0": ("live",)})


# -- the scenarios ----------------------------------------------------------------------------------------------
def deploy_scenario(step: Step, kind: str) -> Scenario:
    def run(r: Run) -> World:
        r.serve("v1.0.0")
        r.harness.arm(step.target(r), kind, competitor=lambda: r.drive("v1.1.0"), label=step.name)
        r.push("v1.1.0")
        r.settle()
        tolerant = step.name == "slack" or kind not in (PERMANENT, PERMANENT_WHILE)
        return World(tags=r.tags, initial=r.initial, max_rollback_acts=1, lease_expiry=kind == LEASE_EXPIRY,
                     outcome=NEW_LIVE if tolerant else either(NEW_LIVE, NEW_FAILED_OLD_SERVES, NEVER_STARTED))

    return Scenario(f"deploy/{step.name} x {kind}", run, f"{kind} @ {step.name}", child=kind == DIES)


ROLLBACK_REQUEST = {"to": "previous", "from": "v1.1.0", "reason": "reliability matrix", "requested_by": "matrix"}


def rollback_scenario(step: Step, kind: str) -> Scenario:
    def run(r: Run) -> World:
        r.serve("v1.0.0")
        r.serve("v1.1.0")
        competitor = {**ROLLBACK_REQUEST, "requested_by": "a second person"}
        r.harness.arm(step.target(r), kind, competitor=lambda: r.rollback(competitor), label=step.name)
        r.rollback(ROLLBACK_REQUEST)
        permanent = kind in (PERMANENT, PERMANENT_WHILE)
        r.wait(lambda: r.state("v1.1.0") == "rolled_back", timeout=8 if permanent else 30)
        r.settle()
        tolerant = step.name == "slack" or not permanent
        return World(tags=r.tags, initial=r.initial, max_rollback_acts=1, lease_expiry=kind == LEASE_EXPIRY,
                     outcome=ROLLED_BACK if tolerant else either(ROLLED_BACK, NOT_ROLLED_BACK_WHOLE))

    return Scenario(f"rollback/{step.name} x {kind}", run, f"{kind} @ {step.name}", child=kind == DIES)


def watch_scenario(step: Step, kind: str) -> Scenario:
    def run(r: Run) -> World:
        r.serve("v1.0.0")
        r.serve("v1.1.0")
        r.local.break_app("v1.1.0")  # live, in its bake window, then failing
        r.harness.arm(step.target(r), kind, label=step.name)
        for _ in range(8):
            r.local.tick_watchdog()
            if r.wait(lambda: r.state("v1.1.0") == "rolled_back", timeout=0.6):
                break
        r.settle()
        return World(tags=r.tags, initial=r.initial, outcome=ROLLED_BACK)

    return Scenario(f"watch/{step.name} x {kind}", run, f"{kind} @ {step.name}", child=kind == DIES)


# -- the state axis: a record made missing, unreadable, wrong-shaped or stale right after a step --------------------
STATE_RECORDS = {"release": "releases/v1.1.0.json", "pointer": "pointer.json", "lease": "lease.json",
                 "queue": "queue.json", "gates": "gates.json", "watchdog": "watchdog.json", "marker": "markers/"}


def state_scenario(step: Step, record: str, condition: str) -> Scenario:
    """The step's phase runs as in its fault scenarios, its record broken after the step's effect; then the
    scheduler ticks, a person does what the channel said (`state check`, `state repair`), and a new release must
    go live and serve whole: a broken record never blocks an unrelated release, nor holds a lease."""
    def run(r: Run) -> World:
        r.serve("v1.0.0")
        if step.phase == "rollback":
            r.serve("v1.1.0")
        elif step.phase == "watch":
            r.serve("v1.1.0")
            r.local.break_app("v1.1.0")
        r.harness.arm_state(step.target(r), STATE_RECORDS[record], condition, step.name)
        if step.phase == "deploy":
            r.push("v1.1.0")
        elif step.phase == "rollback":
            r.rollback(ROLLBACK_REQUEST)
            r.wait(lambda: r.state("v1.1.0") in ("rolled_back", None), timeout=10)
        else:
            for _ in range(6):
                r.local.tick_watchdog()
                if r.wait(lambda: r.state("v1.1.0") == "rolled_back", timeout=0.6):
                    break
        r.settle(timeout=60)
        r.harness.disarm()
        r.tick()
        r.settle(timeout=30)
        r.harness.events.append("mended: " + (", ".join(r.mend()) or "nothing corrupt"))
        r.serve("v1.2.0")
        r.settle()
        deleted = ("v1.1.0",) if record == "release" and any("(deleted)" in e for e in r.harness.events) else ()
        return World(tags=r.tags, initial=r.initial, max_rollback_acts=1, state_fault=True, deleted=deleted,
                     outcome=serving("v1.2.0", states={"v1.2.0": ("live",)}))

    return Scenario(f"state/{step.phase}/{step.name} x {record} {condition}", run,
                    f"{record} {condition} @ {step.name}")


# Where a broken record is met next, each phase: before traffic moves, after it moved, at its end.
STATE_STEPS = ("deploy/migrate", "deploy/api-traffic", "deploy/go-live", "rollback/api-traffic", "rollback/pointer",
               "watch/metrics")


# Markers exist only once a rollback has begun to tell (its told-once marker is written before the pointer moves).
STATE_STEPS_OF = {"marker": ("rollback/pointer",)}


# The gates record exists only once a gate acted (a pause, a held tag), and no gate acts in these scenarios: there
# is nothing to make missing or stale, only a record to find unreadable or wrong-shaped where none should be.
STATE_CONDITIONS_OF = {"gates": (UNREADABLE, WRONG_SHAPE)}


def state_axis() -> list[Scenario]:
    steps = {f"{s.phase}/{s.name}": s for s in DEPLOY_STEPS + ROLLBACK_STEPS + WATCH_STEPS}
    return [state_scenario(steps[name], record, condition) for record in STATE_RECORDS
            for name in STATE_STEPS_OF.get(record, STATE_STEPS)
            for condition in STATE_CONDITIONS_OF.get(record, CONDITIONS)]


def two_tags_at_once() -> Scenario:
    def run(r: Run) -> World:
        r.serve("v1.0.0")
        threads = [threading.Thread(target=r.push, args=(tag,)) for tag in ("v1.1.0", "v1.2.0")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        r.settle()

        def judge(seen: Seen) -> str | None:
            live = seen.serving.get("api")
            if live not in ("v1.1.0", "v1.2.0") or seen.state(live) != "live":
                return f"expected v1.1.0 or v1.2.0 live and serving, found {live} ({seen.state(live or '')})"
            return None

        return World(tags=r.tags, initial=r.initial, max_rollback_acts=0, outcome=judge, fault_expected=False)

    return Scenario("race/two tags at once", run, "two pushes at the same instant")


def five_tags_in_two_seconds() -> Scenario:
    tags = [f"v1.{i}.0" for i in range(1, 6)]

    def run(r: Run) -> World:
        r.serve("v1.0.0")
        for tag in tags:
            threading.Thread(target=r.push, args=(tag,), daemon=True).start()
            time.sleep(0.4)
        r.wait(lambda: all(r.state(t) in ENDED for t in tags), timeout=90)
        r.settle()

        def judge(seen: Seen) -> str | None:
            if seen.serving.get("api") != "v1.5.0" or seen.state("v1.5.0") != "live":
                return f"expected the newest, v1.5.0, live and serving; found {seen.serving.get('api')}"
            return None

        return World(tags=r.tags, initial=r.initial, max_rollback_acts=0, outcome=judge, fault_expected=False)

    return Scenario("race/five tags in two seconds", run, "five pushes 0.4 s apart")


def rollback_during_deploy(after_traffic: bool) -> Scenario:
    nth = 2 if after_traffic else 1

    def run(r: Run) -> World:
        r.serve("v1.0.0")
        r.serve("v1.1.0")
        request = {"to": "previous", "from": "v1.1.0", "reason": "pager", "requested_by": "ivy"}
        r.harness.hooks.on(UPDATE_SERVICE, lambda: threading.Thread(target=r.rollback, args=(request,)).start(), nth=nth)
        r.harness.events.append("rollback published mid-deploy")
        r.push("v1.2.0")
        r.wait(lambda: r.state("v1.2.0") in ENDED and r.state("v1.1.0") == "rolled_back", timeout=40)
        r.settle()
        return World(tags=r.tags, initial=r.initial, max_rollback_acts=1, fault_expected=False,
                     outcome=serving("v1.0.0", states={"v1.1.0": ("rolled_back",), "v1.2.0": ("failed",)}))

    when = "after the API traffic moved" if after_traffic else "while the candidate deploys"
    return Scenario(f"race/rollback during a deploy, {when}", run, f"rollback request {when}")


def incident(policy: str, incident_id: str) -> dict[str, Any]:
    now = int(time.time())
    return {"version": "1.2", "incident": {
        "incident_id": incident_id, "scoping_project_id": "botbalance-prod", "url": "https://console.cloud.google.com/monitoring",
        "state": "open", "started_at": now, "ended_at": None, "summary": "Uptime check on /api/health is failing",
        "policy_name": policy, "policy_user_labels": {"tagship_rollback": "true"}, "condition_name": "uptime",
        "resource": {"type": "cloud_run_revision", "labels": {"service_name": "botbalance-api"}},
        "resource_display_name": "botbalance-api"}}


def three_triggers_at_once() -> Scenario:
    def run(r: Run) -> World:
        r.serve("v1.0.0")
        r.serve("v1.1.0")
        r.serve("v1.2.0")
        r.local.break_app("v1.2.0")  # live, then failing
        actions = [lambda: r.local.tick_watchdog(), lambda: r.local.tick_watchdog(),
                   lambda: r.rollback(incident("botbalance-api-health", "0.race")),
                   lambda: r.rollback({"to": "previous", "from": "v1.2.0", "reason": "pager", "requested_by": "erin"})]
        threads = [threading.Thread(target=a) for a in actions]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for _ in range(4):
            time.sleep(0.4)
            r.local.tick_watchdog()
        r.wait(lambda: r.state("v1.2.0") == "rolled_back", timeout=30)
        r.settle()
        return World(tags=r.tags, initial=r.initial, max_rollback_acts=1, fault_expected=False,
                     outcome=serving("v1.1.0", states={"v1.2.0": ("rolled_back",), "v1.1.0": ("live",)}))

    return Scenario("race/watchdog + alert + manual rollback at once", run, "three triggers at the same instant")


def slack_down_throughout() -> Scenario:
    def run(r: Run) -> World:
        r.harness.slack_down()
        r.serve("v1.0.0")
        r.serve("v1.1.0", app="unhealthy")
        r.serve("v1.2.0")
        r.rollback({"to": "previous", "from": "v1.2.0", "reason": "slack is down", "requested_by": "gus"})
        r.wait(lambda: r.state("v1.2.0") == "rolled_back", timeout=30)
        r.settle()
        return World(tags=r.tags, initial=r.initial, slack_up=False, max_rollback_acts=1, fault_expected=False,
                     outcome=serving("v1.0.0", states={"v1.1.0": ("failed",), "v1.2.0": ("rolled_back",)}))

    return Scenario("slack/down throughout", run, "every Slack call refused")


def matrix() -> list[Scenario]:
    scenarios = [deploy_scenario(step, kind) for step in DEPLOY_STEPS for kind in step.kinds]
    scenarios += [rollback_scenario(step, kind) for step in ROLLBACK_STEPS for kind in step.kinds]
    scenarios += [watch_scenario(step, kind) for step in WATCH_STEPS for kind in step.kinds]
    scenarios += canary_axis()
    scenarios += races()
    scenarios += state_axis()
    return scenarios


def canary_axis() -> list[Scenario]:
    """The canary's steps (split, judge, promote, abort) and a person's controls, each with its faults
    (`tools.reliability.canary`)."""
    from tools.reliability.canary import canary_scenarios

    return canary_scenarios(Scenario)


def races() -> list[Scenario]:
    return [two_tags_at_once(), five_tags_in_two_seconds(), rollback_during_deploy(False), rollback_during_deploy(True),
            three_triggers_at_once(), slack_down_throughout()]


def seeded_slice(seed: int, size: int = SLICE_SIZE) -> list[Scenario]:
    """Every fault kind and every step at least once (a seeded pairing), plus the races."""
    rng = random.Random(seed)
    steps = list(DEPLOY_STEPS + ROLLBACK_STEPS + WATCH_STEPS)
    rng.shuffle(steps)
    kinds = list(KINDS)
    rng.shuffle(kinds)
    chosen: list[Scenario] = []
    by_name = {s.name: s for s in matrix()}
    for index, step in enumerate(steps):
        options = [k for k in step.kinds if k == kinds[index % len(kinds)]] or list(step.kinds)
        kind = options[0]
        chosen.append(by_name[f"{step.phase}/{step.name} x {kind}"])
    canary = canary_axis()
    return chosen[:max(size, 0)] + rng.sample(canary, CANARY_SLICE) + races()


# -- running ----------------------------------------------------------------------------------------------------
def scenario_seed(seed: int, name: str) -> int:
    return int(hashlib.sha256(f"{seed}:{name}".encode()).hexdigest()[:12], 16)


def run_scenario(scenario: Scenario, seed: int) -> Outcome:
    started = time.monotonic()
    with FaultHarness(seed=scenario_seed(seed, scenario.name)) as harness:
        try:
            with harness.cloud(latency=dict(LATENCY), child=scenario.child, **scenario.options) as local:
                run = Run(harness, local)
                world = scenario.run(run)
                fired = harness.fired()
                harness.disarm()
                settled = run.settle(timeout=30)
                results = check(local, harness, world)
                if not settled:
                    results.append(Result("settled in time", False, "pushes kept arriving after the faults stopped"))
        except Exception as error:  # noqa: BLE001 - one scenario's crash is its failure, not the matrix's
            return Outcome(scenario.name, scenario.faults, harness.fired() if harness.local else [],
                           harness.deliveries.count(), 0, [], time.monotonic() - started,
                           error=f"{type(error).__name__}: {error}")
        records = harness.deliveries.records
        messages = {(d.target, d.message) for d in records}
        outcome = Outcome(scenario.name, scenario.faults, fired, len(records), len(records) - len(messages), results,
                          time.monotonic() - started)
        if not outcome.passed:
            outcome.story = [_line(e) for e in harness.logs.entries() if e.get("severity") in ("WARNING", "ERROR")]
        return outcome


def _line(entry: dict[str, Any]) -> str:
    labels = entry.get("logging.googleapis.com/labels") or {}
    extra = {k: v for k, v in entry.items() if k not in ("severity", "message", "time", "logging.googleapis.com/labels")}
    return (f"{entry.get('severity', '')[:4]} {labels.get('function', '')}/{labels.get('tag', '')}"
            f" {entry.get('message')} {json.dumps(extra, default=str)[:240]}")


@contextlib.contextmanager
def quiet_logging() -> Iterator[None]:
    """The functions' own JSON lines go to the harness; Python logging (Flask's tracebacks of the 500s the
    scenarios provoke, the fakes' notes) is silenced meanwhile."""
    before = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(before)


def row(outcome: Outcome, *, verbose: bool = False) -> str:
    failed = [r for r in outcome.results if not r.ok]
    verdict = "pass" if outcome.passed else "FAIL"
    faults = ", ".join(outcome.fired[:3]) + (f" (+{len(outcome.fired) - 3})" if len(outcome.fired) > 3 else "")
    checks = f"{sum(r.ok for r in outcome.results)}/{len(outcome.results)}"
    line = (f"{outcome.name[:50]:50}  {(faults or outcome.faults)[:52]:52}  {outcome.deliveries:4} ({outcome.duplicates:3} dup)"
            f"  {checks:>5}  {verdict}  {outcome.seconds:5.1f}s")
    details = [f"    - {r.name}: {r.detail}" for r in failed]
    if outcome.error:
        details.append(f"    - error: {outcome.error}")
    if verbose:
        details += [f"      | {line}" for line in outcome.story]
    return "\n".join([line, *details])


HEADER = (f"{'scenario':50}  {'faults injected (fired)':52}  {'deliveries':15}  {'invariants':>5}  result")


def run_matrix(scenarios: list[Scenario], seed: int, out: Callable[[str], None] = print, *,
               verbose: bool = False) -> list[Outcome]:
    out(HEADER)
    out("-" * len(HEADER))
    outcomes = []
    with quiet_logging():
        for scenario in scenarios:
            outcome = run_scenario(scenario, seed)
            outcomes.append(outcome)
            out(row(outcome, verbose=verbose))
    return outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.reliability", description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="run every scenario of the matrix (not a seeded slice)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seeds the slice, the deliveries and the fuzzing")
    parser.add_argument("--only", default="", help="run only the scenarios whose name contains this text")
    parser.add_argument("--skip", action="append", default=[], metavar="TEXT",
                        help="leave out the scenarios whose name contains this text (may be given more than once)")
    parser.add_argument("--fuzz-examples", type=int, default=None, help="hypothesis examples per fuzz target")
    parser.add_argument("--no-fuzz", action="store_true", help="skip the hostile-input fuzzing")
    parser.add_argument("--verbose", action="store_true", help="print the functions' warnings and errors of a failed scenario")
    args = parser.parse_args(argv)
    scenarios = matrix() if args.full or args.only else seeded_slice(args.seed)
    scenarios = [s for s in scenarios if args.only in s.name and not any(text in s.name for text in args.skip)]
    started = time.monotonic()
    print(f"reliability matrix: {len(scenarios)} scenarios ({'full' if args.full else 'seeded slice'}, seed {args.seed}),"
          f" every delivery 1-5 times, concurrently, reordered\n")
    outcomes = run_matrix(scenarios, args.seed, verbose=args.verbose)
    fuzz: dict[str, int] = {}
    fuzz_failures: list[str] = []
    if not args.no_fuzz:
        from tests.reliability.test_fuzz import run_fuzzing

        examples = args.fuzz_examples or (1000 if args.full else 300)
        fuzz, fuzz_failures = run_fuzzing(examples, seed=args.seed)
    passed = sum(o.passed for o in outcomes)
    failed = len(outcomes) - passed
    print()
    by_kind = {kind: sum(1 for o in outcomes if o.name.endswith(f" x {kind}")) for kind in KINDS}
    print("fault kinds covered: " + ", ".join(f"{k} {n}" for k, n in by_kind.items())
          + f"; races and Slack down {sum(1 for o in outcomes if o.name.startswith(('race/', 'slack/')))}")
    print(f"deliveries: {sum(o.deliveries for o in outcomes)} ({sum(o.duplicates for o in outcomes)} duplicates);"
          f" took {time.monotonic() - started:.0f}s")
    for failure in fuzz_failures:
        print(f"fuzz FAILED: {failure}")
    if fuzz:
        print("fuzz cases tried: " + ", ".join(f"{target} {count}" for target, count in fuzz.items()))
    print(f"{len(outcomes)} scenarios, {passed} passed, {failed} failed")
    return 0 if failed == 0 and not fuzz_failures else 1


if __name__ == "__main__":
    sys.exit(main())
