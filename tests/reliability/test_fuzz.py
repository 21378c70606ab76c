"""Hostile input, property-based: every target answers 2xx or 4xx with a reason, never 5xx, and bad input has no effect.

Each target is the real functions-framework app of `main.py` (`create_app(target=..., source="main.py")`) driven
through Flask's test client, wired to recording fakes of tagship's ports (`tests.service.fakes`), so an effect is
anything those fakes recorded: a state record written, a build submitted, a Cloud Run call, an object copied, a
message published, a Slack post.

- deploy_on_tag: bodies (bytes, JSON of any shape, mutated real tag pushes, form-encoded), headers (events,
  delivery ids, content types), signatures (valid, sha1, wrong, malformed, upper-case hex, missing) and methods.
  Only a correctly signed tag push of our repository may have an effect; everything else none.
- deploy_progress, health_watchdog, rollback: CloudEvents in binary and structured mode and raw Pub/Sub pushes;
  envelopes that are not objects, messages of the wrong type, data that is not base64, base64 of bytes that are not
  JSON, JSON of every shape, attributes of the wrong types, unknown fields. No release record, lease, pointer or
  traffic changes; no rollback is published; deploy_progress touches nothing at all.

Bodies larger than GitHub's limit are refused with 413 before they are read whole; signature checks compare in
constant time and accept only `sha256=`.

`run_fuzzing(examples, seed)` runs every target (the matrix prints its counts), then the tag properties
(`test_fuzz_tags`) and every source of outside text (`test_fuzz_outside`, a tenth as many examples: each runs whole
releases); the tests below run each with `FUZZ_EXAMPLES` examples (env `TAGSHIP_FUZZ_EXAMPLES`, default 200).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, seed as hypothesis_seed, settings, strategies as st

from shared.adapters.monitoring import TrafficFigures
from shared.webhook import MAX_BODY_BYTES
from tests.service.fakes import World

SOURCE = str(Path(__file__).resolve().parents[2] / "main.py")
SECRET = "secret"  # what tests.service.fakes.World gives the webhook
FUZZ_EXAMPLES = int(os.environ.get("TAGSHIP_FUZZ_EXAMPLES", "200"))
FUZZ_SEED = int(os.environ.get("TAGSHIP_FUZZ_SEED", "20240611"))
CLOUD_EVENT_TARGETS = ("deploy_progress", "health_watchdog", "rollback")
_app_lock = threading.Lock()


# -- the world the targets run in ------------------------------------------------------------------------------
class FakeBuilds:
    def __init__(self) -> None:
        self.submitted: list[Any] = []

    def submit(self, request: Any) -> tuple[str, str]:
        self.submitted.append(request)
        return f"build-{len(self.submitted)}", "https://console.cloud.google.com/cloud-build/builds/x"

    def find(self, tag: str, commit: str, attempt: int = 1) -> tuple[str, str] | None:
        return None

    def status(self, build_id: str) -> Any:
        raise AssertionError("not used by the targets")


class FakeMetrics:
    def figures(self, service: str, window_seconds: int, revision: str | None = None,
                lag_seconds: float = 0.0) -> TrafficFigures:
        return TrafficFigures(0, {}, None)


@dataclass
class Fuzzed:
    """One target's app over a recording world, with one live release (v1.0.0) and nothing to roll back to."""

    target: str
    world: World
    builds: FakeBuilds
    app: Any
    cases: int = 0
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def client(self) -> Any:
        return self.app.test_client()

    def call(self, stream: Any, headers: dict[str, str], content_length: int | None) -> int:
        """Calls the app with a raw WSGI body stream (the test client insists on a seekable one)."""
        from werkzeug.test import EnvironBuilder

        environ = EnvironBuilder(path="/", method="POST", headers=headers).get_environ()
        environ["wsgi.input"] = stream
        if content_length is None:
            environ.pop("CONTENT_LENGTH", None)
            environ["wsgi.input_terminated"] = True
            environ["HTTP_TRANSFER_ENCODING"] = "chunked"
        else:
            environ["CONTENT_LENGTH"] = str(content_length)
        status: list[str] = []
        body = b"".join(self.app(environ, lambda s, h, e=None: status.append(s)))
        del body
        return int(status[0].split()[0])

    def effects(self) -> dict[str, Any]:
        """A snapshot of everything an effect would change."""
        world = self.world
        records = {name: data for name, (data, _) in world.records.objects.items()}
        return {
            "records": json.dumps(records, sort_keys=True, default=str),
            "builds": len(self.builds.submitted),
            "run": len([c for c in world.run.calls if c[0] in ("deploy_revision", "set_traffic")]),
            "executions": len(world.run.executions),
            "copies": len(world.objects.copies),
            "published": len(world.publisher.published),
            "rollbacks_published": len([p for p in world.publisher.published if "rollback" in p[0]]),
            "posts": len(world.notifier.posts),
            "traffic": json.dumps({name: svc.traffic for name, svc in world.run.services.items()}, sort_keys=True),
        }


def fuzzed(target: str) -> Fuzzed:
    import functions_framework

    world = World()
    builds = FakeBuilds()
    world.services.overrides.update({"builds": builds, "metrics": FakeMetrics()})
    world.built("v1.0.0")
    from functions.deploy_progress.pipeline import Pipeline
    from shared.log import logger

    Pipeline(world.services, "v1.0.0", "seed", logger).drive()
    assert world.state("v1.0.0") == "live"
    with _app_lock:  # create_app re-executes main.py into sys.modules["main"]: wire the module this app uses
        kind = "http" if target == "deploy_on_tag" else "cloudevent"
        app = functions_framework.create_app(target=target, source=SOURCE, signature_type=kind)
        sys.modules["main"].use_services(world.services)
    return Fuzzed(target, world, builds, app)


# -- strategies ------------------------------------------------------------------------------------------------
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=40))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)), max_leaves=12)


def tag_push(tag: str = "v9.9.9", commit: str = "a" * 40) -> dict[str, Any]:
    return {
        "ref": f"refs/tags/{tag}", "before": "0" * 40, "after": commit, "created": True, "deleted": False,
        "forced": False, "base_ref": "refs/heads/main", "commits": [],
        "head_commit": {"id": commit, "message": f"Release {tag}"},
        "repository": {"full_name": "botbalance/botbalance", "name": "botbalance", "owner": {"login": "botbalance"}},
        "pusher": {"name": "mallory"}, "sender": {"login": "mallory"},
    }


@st.composite
def mutated_push(draw: Any) -> dict[str, Any]:
    payload = tag_push(draw(st.sampled_from(["v9.9.9", "v1.0.0", "nightly", "v1.2.3-rc.1", "../../x", "v" + "9" * 300])))
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(["ref", "after", "repository", "deleted", "head_commit", "pusher", "created", "zzz"]))
        action = draw(st.sampled_from(["drop", "replace", "nest"]))
        if action == "drop":
            payload.pop(key, None)
        elif action == "replace":
            payload[key] = draw(json_values)
        else:
            payload[key] = {"full_name": draw(json_values), "name": draw(json_values)}
    return payload


@st.composite
def webhook_delivery(draw: Any) -> dict[str, Any]:
    kind = draw(st.sampled_from(["bytes", "json", "push", "form", "form-garbage"]))
    if kind == "bytes":
        body = draw(st.binary(max_size=600))
    elif kind == "json":
        body = json.dumps(draw(json_values)).encode()
    elif kind == "push":
        body = json.dumps(draw(mutated_push())).encode()
    elif kind == "form":
        from urllib.parse import urlencode

        body = urlencode({"payload": json.dumps(draw(mutated_push()))}).encode()
    else:
        body = draw(st.text(max_size=200)).encode("utf-8", "surrogatepass")
    content_type = draw(st.sampled_from([
        "application/json", "application/x-www-form-urlencoded", "application/json; charset=utf-8", "text/plain",
        "", "multipart/form-data; boundary=x", "APPLICATION/JSON"]))
    signature_kind = draw(st.sampled_from(["valid", "valid", "missing", "sha1", "wrong", "garbage", "upper", "empty",
                                           "spaces"]))
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    signature = {
        "valid": f"sha256={digest}", "missing": None, "sha1": "sha1=" + hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest(),
        "wrong": "sha256=" + hashlib.sha256(body).hexdigest(), "garbage": draw(st.text(max_size=80).filter(lambda t: "\n" not in t and "\r" not in t)),
        "upper": f"SHA256={digest.upper()}", "empty": "", "spaces": f"sha256= {digest}",
    }[signature_kind]
    headers = {
        "X-GitHub-Event": draw(st.sampled_from(["push", "push", "ping", "create", "delete", "", "PUSH", "release"])),
        "X-GitHub-Delivery": draw(st.one_of(st.uuids().map(str), st.text(max_size=40).filter(lambda t: "\n" not in t and "\r" not in t))),
    }
    if content_type:
        headers["Content-Type"] = content_type
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    method = draw(st.sampled_from(["POST"] * 8 + ["GET", "PUT"]))
    return {"method": method, "body": body, "headers": headers}


def _latin1(headers: dict[str, str]) -> dict[str, str]:
    """Header values as a client can send them (HTTP headers are latin-1 on the wire)."""
    return {k: v.encode("utf-8", "surrogatepass").decode("latin-1") for k, v in headers.items()}


@st.composite
def pubsub_data(draw: Any, target: str) -> Any:
    """What goes in message.data: base64 of something, or not base64 at all, or not a string."""
    shapes = {
        "deploy_progress": st.one_of(
            st.fixed_dictionaries({"kind": st.sampled_from(["drive", "Drive", "other"]), "tag": json_values}),
            st.fixed_dictionaries({"id": json_values, "status": json_values, "substitutions": json_values,
                                   "results": json_values, "tags": json_values})),
        "rollback": st.one_of(
            st.fixed_dictionaries({}, optional={"to": json_values, "from": json_values, "reason": json_values,
                                                "requested_by": json_values, "trigger": json_values, "extra": json_values}),
            st.fixed_dictionaries({"version": st.sampled_from(["1.2", "test", "9", 1.2]), "incident": json_values}),
            st.fixed_dictionaries({"version": st.just("1.2"), "incident": st.fixed_dictionaries({}, optional={
                "incident_id": json_values, "policy_name": json_values, "state": st.sampled_from(["open", "closed", "OPEN", 5]),
                "summary": json_values, "policy_user_labels": json_values, "resource": json_values, "started_at": json_values})})),
        "health_watchdog": st.fixed_dictionaries({}, optional={"job": json_values}),
    }
    content = draw(st.one_of(shapes[target], json_values))
    encoding = draw(st.sampled_from(["json", "json", "bytes", "not-base64", "not-a-string", "empty"]))
    if encoding == "json":
        return base64.b64encode(json.dumps(content).encode()).decode()
    if encoding == "bytes":
        return base64.b64encode(draw(st.binary(max_size=80))).decode()
    if encoding == "not-base64":
        return draw(st.text(min_size=1, max_size=40))
    if encoding == "not-a-string":
        return draw(json_values)
    return ""


@st.composite
def cloud_event(draw: Any, target: str) -> dict[str, Any]:
    message = draw(st.one_of(
        st.fixed_dictionaries({"data": pubsub_data(target)}, optional={
            "attributes": st.one_of(st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=3), json_values),
            "messageId": json_values, "message_id": json_values, "publishTime": json_values, "unknown": json_values}),
        json_values))
    envelope = draw(st.one_of(
        st.fixed_dictionaries({"message": st.just(message)}, optional={"subscription": json_values, "deliveryAttempt": json_values}),
        json_values))
    mode = draw(st.sampled_from(["binary", "binary", "raw", "structured", "binary-bad-spec"]))
    headers: dict[str, str] = {"Content-Type": "application/json"}
    if mode.startswith("binary"):
        headers.update({"ce-id": draw(st.text(min_size=1, max_size=12).filter(lambda t: t.isprintable())),
                        "ce-specversion": "1.0" if mode == "binary" else draw(st.sampled_from(["0.3", "2", ""])),
                        "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
                        "ce-source": "//pubsub.googleapis.com/projects/p/topics/t"})
        body = json.dumps(envelope).encode()
    elif mode == "structured":
        headers["Content-Type"] = "application/cloudevents+json"
        body = json.dumps(draw(st.one_of(
            st.fixed_dictionaries({"specversion": st.just("1.0"), "id": st.just("1"), "type": st.just("t"),
                                   "source": st.just("//s"), "data": st.just(envelope)}),
            json_values))).encode()
    else:
        body = json.dumps(envelope).encode() if draw(st.booleans()) else draw(st.binary(max_size=200))
    return {"body": body, "headers": _latin1(headers)}


# -- the properties ----------------------------------------------------------------------------------------------
def _is_legit_start(delivery: dict[str, Any]) -> bool:
    """A correctly signed push of a tag of our repository: the one delivery that may start something."""
    from shared import webhook
    from shared.errors import InputError, SignatureError

    if delivery["method"] != "POST":
        return False
    headers = delivery["headers"]
    try:
        webhook.verify_signature(SECRET, delivery["body"], headers.get("X-Hub-Signature-256"))
        data = webhook.parse_body(delivery["body"], headers.get("Content-Type"))
        decision = webhook.classify(headers.get("X-GitHub-Event"), data, repository="botbalance/botbalance",
                                    tag_pattern=r"^v\d+\.\d+\.\d+$")
    except (SignatureError, InputError):
        return False
    except Exception:  # noqa: BLE001 - the pure functions crashing is the target's problem, judged below
        return False
    return isinstance(decision, webhook.Start)


def _check_answer(fuzzed: Fuzzed, response: Any, what: str) -> None:
    status = response.status_code
    fuzzed.statuses[status] = fuzzed.statuses.get(status, 0) + 1
    assert 200 <= status < 500, f"{fuzzed.target} answered {status} to {what}: {response.data[:300]!r}"
    if status >= 400:
        assert response.data.strip(), f"{fuzzed.target} answered {status} without a reason to {what}"


def webhook_case(fuzzed: Fuzzed, delivery: dict[str, Any]) -> None:
    fuzzed.cases += 1
    before = fuzzed.effects()
    headers = _latin1(delivery["headers"])
    response = fuzzed.client.open("/", method=delivery["method"], data=delivery["body"], headers=headers)
    _check_answer(fuzzed, response, f"{delivery['method']} {headers} {delivery['body'][:120]!r}")
    if response.status_code >= 400 or response.status_code == 200 and response.is_json and response.json.get("status") == "ignored":
        assert response.is_json and (response.json.get("error") or response.json.get("reason")), response.data[:200]
    if not _is_legit_start(delivery):
        assert fuzzed.effects() == before, f"an effect from {headers} {delivery['body'][:200]!r}"


def cloud_event_case(fuzzed: Fuzzed, event: dict[str, Any]) -> None:
    fuzzed.cases += 1
    before = fuzzed.effects()
    response = fuzzed.client.post("/", data=event["body"], headers=event["headers"])
    _check_answer(fuzzed, response, f"{event['headers']} {event['body'][:200]!r}")
    after = fuzzed.effects()
    if fuzzed.target == "deploy_progress":
        assert after == before, f"deploy_progress acted on {event['body'][:300]!r}: {before} -> {after}"
    else:  # a watchdog tick may remember its verdict, and a refused request may say so: nothing else moves
        for key in ("builds", "run", "executions", "copies", "rollbacks_published", "traffic"):
            assert after[key] == before[key], f"{fuzzed.target}: {key} changed on {event['body'][:300]!r}"
        releases_before = {k: v for k, v in json.loads(before["records"]).items() if k.startswith(("releases/", "pointer", "lease"))}
        releases_after = {k: v for k, v in json.loads(after["records"]).items() if k.startswith(("releases/", "pointer", "lease"))}
        assert releases_after == releases_before, f"{fuzzed.target} changed a release, the pointer or the lease"


def fuzz(target: str, examples: int, *, seed: int = FUZZ_SEED) -> Fuzzed:
    """Runs `examples` hypothesis cases against `target`; raises on the first property that fails."""
    with _quiet_logs():
        case = fuzzed(target)
    strategy = webhook_delivery() if target == "deploy_on_tag" else cloud_event(target)
    check = webhook_case if target == "deploy_on_tag" else cloud_event_case

    @hypothesis_seed(seed)
    @settings(max_examples=examples, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def run(value: Any) -> None:
        check(case, value)

    with _quiet_logs():
        run()
    return case


class _quiet_logs:
    """The functions' JSON lines and Flask's own error log go nowhere while fuzzing (thousands of refusals)."""

    def __enter__(self) -> None:
        import logging

        from shared import log

        self._stream = io.StringIO()
        log.set_stream(self._stream)
        self._level = logging.root.manager.disable
        logging.disable(logging.ERROR)

    def __exit__(self, *exc: Any) -> None:
        import logging

        from shared import log

        log.set_stream(None)
        logging.disable(self._level)


def run_fuzzing(examples: int, *, seed: int = FUZZ_SEED) -> tuple[dict[str, int], list[str]]:
    """Every target fuzzed, then the tags and the outside text; (cases tried per target, failures)."""
    from tests.reliability.test_fuzz_outside import run_outside_fuzzing
    from tests.reliability.test_fuzz_tags import run_tag_fuzzing

    counts: dict[str, int] = {}
    failures: list[str] = []
    for target in ("deploy_on_tag", *CLOUD_EVENT_TARGETS):
        case: Fuzzed | None = None
        try:
            case = fuzz(target, examples, seed=seed)
        except Exception as error:  # noqa: BLE001 - reported with the others
            failures.append(f"{target}: {str(error).splitlines()[0][:300]}")
        counts[target] = case.cases if case is not None else 0
    try:
        counts["oversized bodies"] = oversized_bodies()
    except AssertionError as error:
        failures.append(f"oversized bodies: {error}")
    for run, count in ((run_tag_fuzzing, examples), (run_outside_fuzzing, max(1, examples // 10))):
        tried, failed = run(count, seed=seed)
        counts.update(tried)
        failures.extend(failed)
    return counts, failures


# -- bodies beyond GitHub's limit --------------------------------------------------------------------------------
class CountingStream(io.RawIOBase):
    """A request body of `size` bytes that counts how many were read."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = min(len(buffer), self.size - self.read_bytes)
        buffer[:count] = b"{" * count
        self.read_bytes += count
        return count


def oversized_bodies() -> int:
    """Bodies at, above and far above GitHub's 25 MB limit; returns how many cases were tried."""
    with _quiet_logs():
        case = fuzzed("deploy_on_tag")
    before = case.effects()
    tried = 0
    headers = {"Content-Type": "application/json", "X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + "0" * 64}
    with _quiet_logs():
        for size in (MAX_BODY_BYTES + 1, MAX_BODY_BYTES * 4):
            stream = CountingStream(size)  # the declared length is refused before a byte is read
            status = case.call(stream, headers, size)
            tried += 1
            assert status == 413, f"{size} bytes declared: answered {status}"
            assert stream.read_bytes == 0, f"{size} bytes declared: {stream.read_bytes} read before refusing"
        stream = CountingStream(MAX_BODY_BYTES * 2)  # no declared length (chunked): read up to the limit, no further
        status = case.call(stream, headers, None)
        tried += 1
        assert status == 413, f"chunked body over the limit: answered {status}"
        assert stream.read_bytes <= MAX_BODY_BYTES + 64 * 1024, f"chunked body: {stream.read_bytes} bytes read"
        body = b" " * (MAX_BODY_BYTES - 2) + b"{}"  # exactly at the limit: read and judged, signature first
        response = case.client.post("/", data=body, headers={"Content-Type": "application/json", "X-GitHub-Event": "push",
                                                            "X-Hub-Signature-256": "sha256=" + "0" * 64})
        tried += 1
        assert response.status_code == 401, f"a body at the limit with a wrong signature: answered {response.status_code}"
    assert case.effects() == before, "an oversized body had an effect"
    return tried


# -- the tests -----------------------------------------------------------------------------------------------------
@pytest.mark.timeout(120)
def test_the_webhook_answers_hostile_deliveries_with_a_reason_and_acts_only_on_a_signed_tag_push():
    case = fuzz("deploy_on_tag", FUZZ_EXAMPLES * 2)
    assert case.cases >= FUZZ_EXAMPLES
    assert any(400 <= status < 500 for status in case.statuses)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("target", CLOUD_EVENT_TARGETS)
def test_a_cloud_event_target_answers_hostile_events_without_a_5xx_or_an_effect(target):
    case = fuzz(target, FUZZ_EXAMPLES)
    assert case.cases >= FUZZ_EXAMPLES // 2


@pytest.mark.timeout(120)
def test_a_body_over_githubs_limit_is_refused_before_it_is_read_whole():
    assert oversized_bodies() == 4


def test_signatures_are_compared_in_constant_time_over_the_whole_digest(monkeypatch):
    from shared import webhook

    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(webhook.hmac, "compare_digest", spy)
    body = b'{"zen": "Design for failure."}'
    good = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    webhook.verify_signature("s3cret", body, good)
    with pytest.raises(webhook.SignatureError):
        webhook.verify_signature("s3cret", body, good[:-1] + ("0" if good[-1] != "0" else "1"))
    assert len(compared) == 2 and all(len(a) == len(good) for a, _ in compared)


@pytest.mark.parametrize("header", [
    "sha1=" + hmac.new(b"s3cret", b"{}", hashlib.sha1).hexdigest(),
    "SHA256=" + hmac.new(b"s3cret", b"{}", hashlib.sha256).hexdigest(),
    hmac.new(b"s3cret", b"{}", hashlib.sha256).hexdigest(),
    "sha512=" + hmac.new(b"s3cret", b"{}", hashlib.sha512).hexdigest(),
], ids=["sha1", "upper-case scheme", "no scheme", "sha512"])
def test_only_a_sha256_signature_is_accepted_even_when_its_digest_is_right(header):
    from shared import webhook

    with pytest.raises(webhook.SignatureError):
        webhook.verify_signature("s3cret", b"{}", header)
