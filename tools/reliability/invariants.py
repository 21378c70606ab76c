"""What must hold after any scenario, judged from the local cloud itself: the builds the fake Cloud Build ran, the
executions and revisions the fake Cloud Run holds and which revision it serves, what the live bucket serves, what
the fake Slack received, what the functions logged, and what the state bucket holds (read straight from
fake-gcs-server, never through tagship's own code).

    results = check(cloud, harness, World(tags=["v1.0.0", "v1.1.0"], initial=initial_world(cloud)))
    failed = [r for r in results if not r.ok]

Each result is named for the guarantee it checks (`NAMES`), with a detail that says what was found when it fails.
"""
from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

from shared.errors import CorruptRecord
from shared.release import ENDS, FAILED, LIVE, ROLLED_BACK, Release, revision_name

ONE_BUILD = "one build per tag"
ONE_MIGRATION = "one migration per release"
ONE_REVISION = "one revision per release and service"
ONE_UNIT = "api and worker on one release"
FRONTEND = "frontend matches the serving release"
NOT_ROLLED_BACK = "no rolled-back release serving"
ROLLBACK_ONCE = "each rollback acted on at most once"
RECORDS = "state records intact"
SETTLED = "every release settled, lease free"
SLACK_TOLD = "failures told in Slack"
LOGS_TOLD = "failures told in the logs"
OUTCOME = "expected outcome"
FAULT_STRUCK = "the fault struck"
CORRUPT_ONCE = "each corrupt record told once"
NAMES = (ONE_BUILD, ONE_MIGRATION, ONE_REVISION, ONE_UNIT, FRONTEND, NOT_ROLLED_BACK, ROLLBACK_ONCE, RECORDS,
         SETTLED, SLACK_TOLD, LOGS_TOLD, OUTCOME, FAULT_STRUCK, CORRUPT_ONCE)

FAILURE_MARKS = (":x:", ":octagonal_sign:", ":fast_forward:", ":rewind:", ":no_entry:", ":warning:", "failed",
                 "Failed", "refused", "Rolled back", "rolled back", "Superseded", "superseded")
FAILED_MARKS = (":x:", "failed", "Failed", ":no_entry:", "refused", "could not")  # a failure, not a rollback done
WARNING_OR_WORSE = ("WARNING", "ERROR", "CRITICAL", "ALERT", "EMERGENCY")
FAILURES = (FAILED, ROLLED_BACK)  # superseded is an end, not a failure: a newer tag took its place


@dataclass(frozen=True)
class Result:
    name: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class Initial:
    """The world as the team's manual deploy left it, before the scenario."""

    revisions: dict[str, str]  # service -> its seeded revision
    frontend: dict[str, str]  # path -> md5 in the live bucket


@dataclass
class World:
    """What the scenario did and expects, for the checks to compare the cloud with."""

    tags: list[str]
    initial: Initial
    max_rollback_acts: int = 1  # moves of the API back to a revision that served before (rollbacks and restores)
    slack_up: bool = True
    outcome: Callable[["Seen"], str | None] | None = None  # None when as expected, else what differs
    fault_expected: bool = True
    lease_expiry: bool = False  # the armed fault expires the lease: it must have found one held
    state_fault: bool = False  # a state record was broken: each corrupt version is told in Slack at most once
    deleted: tuple[str, ...] = ()  # releases whose record the scenario deleted: their builds have none, rightly


@dataclass
class Seen:
    """The cloud's state at the end, as the checks read it (also what `World.outcome` judges)."""

    serving: dict[str, str | None]  # "api"/"worker" -> the release whose revision serves it all (None: pre-tagship)
    split: dict[str, dict[str, int]]
    releases: dict[str, Release]
    unreadable: list[str] = field(default_factory=list)
    state_objects: dict[str, Any] = field(default_factory=dict)

    def state(self, tag: str) -> str | None:
        release = self.releases.get(tag)
        return release.state if release else None


def initial_world(local: Any) -> Initial:
    api, worker = local.config.api.service, local.config.worker.service
    revisions = {service: next(iter(local.fake_run.traffic(service))) for service in (api, worker)}
    return Initial(revisions=revisions, frontend=local.live_frontend())


def read_state(local: Any) -> tuple[dict[str, Any], list[str]]:
    """Every record of the state bucket (not the staged frontends), parsed; and the names that did not parse."""
    bucket = local.config.state.bucket
    prefix = local.config.frontend.releases_prefix
    client = local.storage_client()
    objects: dict[str, Any] = {}
    unreadable: list[str] = []
    for blob in client.list_blobs(bucket):
        if blob.name.startswith(prefix):
            continue
        try:
            data = json.loads(blob.download_as_bytes())
            if not isinstance(data, dict):
                raise ValueError(f"expected an object, found {type(data).__name__}")
            if blob.name.startswith("releases/"):
                Release.from_dict(data)
            objects[blob.name] = data
        except (ValueError, TypeError, CorruptRecord) as error:
            if not blob.name.startswith("markers/"):  # a marker means by being there: its content is never read
                unreadable.append(f"{blob.name}: {error}")
    return objects, unreadable


def _tag_of(service: str, revision: str, tags: list[str], initial: Initial) -> str | None:
    if revision == initial.revisions.get(service):
        return None
    for tag in tags:
        if revision == revision_name(service, tag):
            return tag
    return f"?{revision}"


def observe(local: Any, world: World) -> Seen:
    api, worker = local.config.api.service, local.config.worker.service
    objects, unreadable = read_state(local)
    releases = {}
    for name, data in objects.items():
        if name.startswith("releases/"):
            release = Release.from_dict(data)
            releases[release.tag] = release
    serving: dict[str, str | None] = {}
    split: dict[str, dict[str, int]] = {}
    for role, service in (("api", api), ("worker", worker)):
        split[role] = local.fake_run.traffic(service)
        if len(split[role]) == 1:
            serving[role] = _tag_of(service, next(iter(split[role])), world.tags + sorted(releases), world.initial)
        else:
            serving[role] = f"?split {split[role]}"
    return Seen(serving=serving, split=split, releases=releases, unreadable=unreadable, state_objects=objects)


def check(local: Any, harness: Any, world: World) -> list[Result]:
    seen = observe(local, world)
    tags = sorted(set(world.tags) | set(seen.releases))
    results = [
        _one_build(local),
        _one_migration(local, tags),
        _one_revision(local, tags, world),
        _one_unit(seen),
        _frontend(local, seen, world),
        _not_rolled_back(seen),
        _rollback_once(local, harness, tags, world),
        _records(local, seen, world),
        _settled(seen),
        _slack_told(local, harness, seen, world),
        _logs_told(harness, seen),
    ]
    if world.state_fault:
        results.append(_corrupt_told_once(local, world))
    if world.outcome is not None:
        differs = world.outcome(seen)
        results.append(Result(OUTCOME, differs is None, differs or ""))
    if world.fault_expected:
        fired = harness.fired()
        struck = [f for f in fired if "none held" not in f and not f.startswith("state: no ")]
        if world.lease_expiry:
            struck = [f for f in struck if f.startswith("lease expired")]
        results.append(Result(FAULT_STRUCK, bool(struck), "; ".join(fired) or "nothing armed ever struck"))
    return results


def _corrupt_told_once(local: Any, world: World) -> Result:
    """The channel's warning of a corrupt record, once per version of it (a release's thread may also name the record
    as the reason the release failed: that is its failure told, not the record told again)."""
    told: Counter[str] = Counter()
    for message in local.slack.messages:
        text = message.get("text", "")
        if "tagship found a corrupt record" in text:
            told[text.split(":", 3)[-1][:80]] += 1
    repeated = {what: n for what, n in told.items() if n > 1}
    return Result(CORRUPT_ONCE, not repeated, f"told more than once: {repeated}" if repeated
                  else f"{sum(told.values())} corrupt records told")


def _one_build(local: Any) -> Result:
    counts = Counter(b.substitutions.get("_TAG", "?") for b in local.fake_build.builds())
    extra = {tag: n for tag, n in counts.items() if n > 1}
    return Result(ONE_BUILD, not extra, f"builds per tag: {extra}" if extra else f"{sum(counts.values())} builds")


def _one_migration(local: Any, tags: list[str]) -> Result:
    from localcloud.scenario import digest_for_commit

    by_digest = {digest_for_commit(local.commit_for(tag)): tag for tag in tags}
    counts: Counter[str] = Counter()
    for execution in local.fake_run.executions(local.config.migrations.job):
        image = execution.template.containers[0].image if execution.template.containers else ""
        digest = image.rsplit("@", 1)[-1]
        counts[by_digest.get(digest, image)] += 1
    extra = {tag: n for tag, n in counts.items() if n > 1}
    return Result(ONE_MIGRATION, not extra, f"executions per release: {extra}" if extra else f"{sum(counts.values())} executions")


def _one_revision(local: Any, tags: list[str], world: World) -> Result:
    problems = []
    for service in (local.config.api.service, local.config.worker.service):
        expected = {revision_name(service, tag) for tag in tags} | {world.initial.revisions[service]}
        unexpected = [r for r in local.fake_run.revisions(service) if r not in expected]
        if unexpected:
            problems.append(f"{service}: revisions no release explains: {unexpected}")
    return Result(ONE_REVISION, not problems, "; ".join(problems))


def _one_unit(seen: Seen) -> Result:
    api, worker = seen.serving.get("api"), seen.serving.get("worker")
    ok = api == worker and not (api or "").startswith("?")
    return Result(ONE_UNIT, ok, "" if ok else f"api serves {api} ({seen.split['api']}), worker {worker} ({seen.split['worker']})")


def _frontend(local: Any, seen: Seen, world: World) -> Result:
    api = seen.serving.get("api")
    if api != seen.serving.get("worker") or (api or "").startswith("?"):
        return Result(FRONTEND, False, "no single release serves, so no frontend can match it")
    live = local.live_frontend()
    if api is None:
        expected = world.initial.frontend
    else:
        prefix = f"{local.config.frontend.releases_prefix}{api}/"
        expected = {b.name[len(prefix):]: b.md5_hash
                    for b in local.storage_client().list_blobs(local.config.state.bucket, prefix=prefix)}
        if not expected:
            return Result(FRONTEND, False, f"nothing staged for the serving release {api}")
    differs = sorted(path for path, md5 in expected.items() if live.get(path) != md5)
    return Result(FRONTEND, not differs, f"live objects differ from {api or 'the pre-tagship frontend'}: {differs}" if differs else "")


def _not_rolled_back(seen: Seen) -> Result:
    bad = [role for role, tag in seen.serving.items() if tag and seen.state(tag) == ROLLED_BACK]
    return Result(NOT_ROLLED_BACK, not bad, f"{', '.join(bad)} serve {seen.serving[bad[0]]}, marked rolled back" if bad else "")


def _rollback_once(local: Any, harness: Any, tags: list[str], world: World) -> Result:
    """Counts moves of the API back to a revision that served earlier in the scenario (a rollback, or a failed
    release's restore), from the traffic the fake Cloud Run served."""
    api = local.config.api.service
    sequence: list[str] = []
    for _, api_split, _ in harness.sampler.history:
        if len(api_split) == 1:
            revision = next(iter(api_split))
            if not sequence or sequence[-1] != revision:
                sequence.append(revision)
    acts = sum(1 for i, revision in enumerate(sequence) if revision in sequence[:i])
    names = [_tag_of(api, r, tags, world.initial) or "pre-tagship" for r in sequence]
    ok = acts <= world.max_rollback_acts
    return Result(ROLLBACK_ONCE, ok, f"{acts} moves back (at most {world.max_rollback_acts}): {' -> '.join(names)}")


def _records(local: Any, seen: Seen, world: World) -> Result:
    problems = list(seen.unreadable)
    for build in local.fake_build.builds():
        tag = build.substitutions.get("_TAG", "")
        release = seen.releases.get(tag)
        if release is None:
            if tag not in world.deleted:
                problems.append(f"build {build.id} of {tag} has no release record")
        elif release.build_id and release.build_id != build.id:
            problems.append(f"{tag} records build {release.build_id}, the cloud ran {build.id}")
        elif not release.build_id and release.state not in ENDS:
            problems.append(f"{tag} ({release.state}) never recorded its build {build.id}")
    pointer = seen.state_objects.get("pointer.json") or {}
    for key in ("live", "previous"):
        tag = pointer.get(key)
        if tag and tag not in seen.releases and tag not in world.deleted:  # deleted by hand: still what served
            problems.append(f"pointer.{key} names {tag}, which has no record")
    if pointer.get("live") and seen.serving.get("api") != pointer.get("live"):
        problems.append(f"pointer says {pointer.get('live')} is live, the cloud serves {seen.serving.get('api')}")
    if not pointer.get("live") and seen.serving.get("api") is not None:
        problems.append(f"no live pointer, the cloud serves {seen.serving.get('api')}")
    return Result(RECORDS, not problems, "; ".join(problems))


def _settled(seen: Seen) -> Result:
    problems = [f"{tag} stuck in {r.state}" for tag, r in seen.releases.items() if r.state not in ENDS and r.state != LIVE]
    lease = seen.state_objects.get("lease.json") or {}
    if lease.get("tag") and float(lease.get("expires", 0)) > time.time():
        holder = lease["tag"]
        release = seen.releases.get(holder)
        if holder == "rollback" or release is None or release.state in ENDS or release.state == LIVE:
            problems.append(f"lease still held by {holder} ({lease.get('owner') or 'between steps'})")
    queue = seen.state_objects.get("queue.json") or {}
    if queue.get("waiting"):
        problems.append(f"{queue['waiting']} still waiting in the queue")
    return Result(SETTLED, not problems, "; ".join(problems))


def _told(messages: list[dict[str, Any]], release: Release) -> bool:
    for message in messages:
        texts = [message.get("text", "")] + [u.get("text", "") for u in message.get("updates", [])]
        in_thread = release.slack_ts and (message.get("thread_ts") == release.slack_ts or message.get("ts") == release.slack_ts)
        about = in_thread or any(release.tag in text for text in texts)
        if about and any(mark in text for text in texts for mark in FAILURE_MARKS):
            return True
    return False


def _slack_told(local: Any, harness: Any, seen: Seen, world: World) -> Result:
    slack_faults = [f for f in harness.fired() if f.startswith(("slack", "chat."))]
    if not world.slack_up or slack_faults:
        return Result(SLACK_TOLD, True, "Slack was down or faulty: not required")
    messages = local.slack.messages
    problems = [f"{tag} ended {r.state}, nothing in Slack says so" for tag, r in seen.releases.items()
                if r.state in FAILURES and not _told(messages, r)]
    for entry in _first_of_each_message(_acknowledged_failures(harness)):
        tag = (entry.get("logging.googleapis.com/labels") or {}).get("tag")
        if tag and tag in seen.releases and _told(messages, seen.releases[tag]):
            continue
        # told once per message, by the copy that gave up first (copies after it stay quiet): from then on
        since = float(entry.get("time", 0)) - 5.0
        if any(float(m.get("ts", 0)) >= since and any(mark in m.get("text", "") for mark in FAILED_MARKS)
               for m in messages):
            continue
        problems.append(f"{entry.get('message')} ({entry.get('error') or entry.get('reason')}) not told in Slack")
    return Result(SLACK_TOLD, not problems, "; ".join(problems[:4]))


def _first_of_each_message(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per (function, message id): the earliest; entries without a message id stand alone."""
    first: dict[tuple[str, str], dict[str, Any]] = {}
    alone = []
    for entry in entries:
        labels = entry.get("logging.googleapis.com/labels") or {}
        key = (str(labels.get("function", "")), str(labels.get("message_id") or ""))
        if not key[1]:
            alone.append(entry)
        elif key not in first or float(entry.get("time", 0)) < float(first[key].get("time", 0)):
            first[key] = entry
    return [*first.values(), *alone]


def _acknowledged_failures(harness: Any) -> list[dict[str, Any]]:
    """Log lines of faults the functions gave up on: nothing will retry them, so a person must hear of them."""
    wanted = ("permanent fault; acknowledged", "build submission failed", "could not record the release")
    return [e for e in harness.logs.entries() if e.get("message") in wanted]


def _logs_told(harness: Any, seen: Seen) -> Result:
    entries = harness.logs.entries()
    problems = []
    for tag, release in seen.releases.items():
        if release.state not in FAILURES:
            continue
        logged = [e for e in entries if (e.get("logging.googleapis.com/labels") or {}).get("tag") == tag
                  and e.get("severity") in WARNING_OR_WORSE]
        if not logged:
            problems.append(f"{tag} ended {release.state} without a warning or error logged")
    # A delivery that never met a living instance (it was in flight when the process was killed, or arrived
    # while the new one started) has no line of the function's own: the platform reports those.
    died = bool(getattr(harness, "child", None) and harness.child.kills)
    answers: Counter[str] = Counter(d.target for d in harness.deliveries.records
                                    if d.status >= 500 or (d.status == 0 and not died))
    for target, count in answers.items():
        warned = sum(1 for e in entries if e.get("severity") in WARNING_OR_WORSE
                     and (e.get("logging.googleapis.com/labels") or {}).get("function") == target)
        if warned < count:
            problems.append(f"{target} answered {count} deliveries with 5xx, logged {warned} warnings or errors")
    return Result(LOGS_TOLD, not problems, "; ".join(problems))


__all__ = ["NAMES", "Initial", "Result", "Seen", "World", "check", "initial_world", "observe", "read_state"]
