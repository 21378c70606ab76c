"""Text from outside, property-based: whatever an outside field holds, Slack shows it as text and the log stays lines.

One property test per source of outside text, each feeding arbitrary text (control characters, newlines, Slack's
`<!channel>`, `<!here>`, `<@U1>`, `<#C1>`, `<https://evil|x>`, `&`, `>`, and strings of a few MB built by repetition)
into one outside field and running the shells as the platform would: the webhook (`deploy_on_tag.handle`), and the
`deploy_progress`, `rollback` and `health_watchdog` targets of `main.py` on Pub/Sub events, all over the recording
fakes of `tests.service.fakes`. The sources: the pushed tag (under the default pattern, and under a permissive
pattern config), the pusher's name, the head commit's message, a rollback request's fields, a Monitoring incident's
fields, a build's answer (its failure detail, its log URL) and a forged build message's claims, the error text a
cloud call answers with, a health endpoint's answer, and the content of a corrupt record.

After every case:
- every text posted or updated in Slack is at most `TEXT_LIMIT` (3900) characters, holds no `<` or `>` but those of
  a link `shared.text.link` made with one of tagship's labels to a URL a fake answered with, and every `&` in it
  opens `&amp;`, `&lt;` or `&gt;`: nothing from outside notifies, mentions, links or renders as Slack markup;
- every log line (`shared.log.set_stream`) is one line of valid JSON with a severity and a message, shorter than
  `LINE_LIMIT` characters (`shared.log.MAX_FIELD` bounds each field).

`run_outside_fuzzing(examples, seed)` runs every source (the reliability matrix prints its counts); the tests run each
with `FUZZ_EXAMPLES` examples (env `TAGSHIP_FUZZ_EXAMPLES`, default 30 here: a case runs whole releases), seeded
(`TAGSHIP_FUZZ_SEED`), no database, nothing timed.
"""
from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import io
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from shared import log
from shared.adapters.monitoring import TrafficFigures
from shared.adapters.slack import TEXT_LIMIT
from shared.build_definition import release_build
from shared.build_message import BuildStatus
from shared.errors import NotFound, PermanentError, TagshipError, TransientError
from shared.ports import ExecutionState, HttpAnswer
from shared.text import link
from shared.unit_move import frontend_prefix
from tests.reliability.test_fuzz import FUZZ_SEED
from tests.service.fakes import FakeBuilds, FakeHttp, World

FUZZ_EXAMPLES = int(os.environ.get("TAGSHIP_FUZZ_EXAMPLES", "30"))
LINE_LIMIT = 20_000
SECRET = "secret"  # what tests.service.fakes.World gives the webhook
COMMIT, OTHER_COMMIT = "c" * 40, "e" * 40
DIGEST = "sha256:" + "d" * 64
LOG_URL = "https://console.cloud.google.com/cloud-build/builds/1?project=2&region=global"
LABELS = ("build log", "incident")  # what tagship names its links
PERMISSIVE = ".+"  # a github.tag_pattern that takes any tag on one line


# -- hostile text ---------------------------------------------------------------------------------------------------
PIECES = ["<!channel>", "<!here>", "<!everyone>", "<@U1>", "<#C1>", "<https://evil.example|x>", "<http://evil>",
          "<mailto:a@b|c>", "&", "&amp;", "&lt;", ">", "<", "|", "\n", "\r\n", "\t", "\x00", "\x1b[31m", "\u2028",
          "\U0001f600", "*bold*", "`code`", "```", "_x_", "~x~", "> quote", "\\", '"', "'", "${_TAG}", "%s", "{}"]
HUGE = 2_000_000


class Text(str):
    """Outside text that reads short when a failing case is reported: its head, and how long it is."""

    def __repr__(self) -> str:
        return str.__repr__(self) if len(self) <= 120 else f"{str.__repr__(self[:100])}... ({len(self)} characters)"


@st.composite
def hostile(draw: Any, *, one_line: bool = False, huge: bool = True) -> str:
    """Arbitrary text with Slack's control sequences in it; now and then thousands of characters of it, or (when
    `huge`) two million, built by repetition."""
    pieces = draw(st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=24)), min_size=1, max_size=8))
    text = "".join(pieces)
    size = draw(st.sampled_from([0, 0, 0, 0, 0, 0, 4_000, 4_000, HUGE if huge else 4_000]))
    if size and text:
        text = text * (size // len(text) + 1)
    if one_line:
        text = text.replace("\n", " ")
    return Text(text or "<!channel>")


# -- the world the shells run in --------------------------------------------------------------------------------------
class Builds(FakeBuilds):
    """Cloud Build as the adapter meets it: a request `release_build` refuses is never submitted; ids are short."""

    def __init__(self, project: str) -> None:
        super().__init__()
        self.project = project
        self.failure: TagshipError | None = None

    def submit(self, request: Any) -> tuple[str, str]:
        if self.failure is not None:
            raise self.failure
        release_build(request, self.project)
        self.submitted.append(request)
        build_id = f"build-{len(self.submitted)}"
        self.attempts[build_id] = request.attempt
        return build_id, LOG_URL


class Figures:
    def figures(self, service: str, window_seconds: int, revision: str | None = None,
                lag_seconds: float = 0.0) -> TrafficFigures:
        return TrafficFigures(0, {}, None)


class Answers(FakeHttp):
    """Health answers per URL (`pages`) or URL prefix (`answers`), else as `FakeHttp` answers."""

    def __init__(self) -> None:
        super().__init__()
        self.pages: dict[str, HttpAnswer] = {}
        self.answers: dict[str, HttpAnswer] = {}

    def request(self, url: str, *, method: str = "GET", headers: dict[str, str] | None = None,
                timeout: float = 5.0) -> HttpAnswer:
        if url in self.pages:
            self.requests.append(url)
            return self.pages[url]
        for prefix, answer in self.answers.items():
            if url.startswith(prefix):
                self.requests.append(url)
                return answer
        return super().request(url, method=method, headers=headers, timeout=timeout)


@dataclass
class Case:
    """One case's world, what it logged, and the URLs the fakes answered with (the only ones a link may go to)."""

    world: World
    builds: Builds
    http: Answers
    stream: io.StringIO
    trusted: set[str] = field(default_factory=lambda: {LOG_URL})

    @property
    def config(self) -> Any:
        return self.world.services.config


def new_case(pattern: str | None = None, live: tuple[str, ...] = ()) -> Case:
    """A fresh world in which the releases `live` went live one after the other, through the shells (each world of
    releases is made once, then copied: a case costs what its own text costs)."""
    world = World()
    if pattern is not None:
        world.services.config = world.config.replace(github={"tag_pattern": pattern})
    builds, http = Builds(world.config.project.id), Answers()
    world.services.overrides.update({"builds": builds, "metrics": Figures(), "http": http})
    world.builds, world.http = builds, http
    stream = io.StringIO()
    case = Case(world, builds, http, stream)
    if live:
        _restore(case, _released(live))
    log.set_stream(stream)
    return case


_RELEASED: dict[tuple[str, ...], dict[str, Any]] = {}


def _released(tags: tuple[str, ...]) -> dict[str, Any]:
    if tags not in _RELEASED:
        case = new_case()
        try:
            for tag in tags:
                release(case, tag)
                assert case.world.state(tag) == "live", case.world.notifier.posts
        finally:
            log.set_stream(None)
        check_slack(case, f"releasing {tags}")
        check_log(case, f"releasing {tags}")
        world = case.world
        _RELEASED[tags] = copy.deepcopy({
            "records": world.records.objects, "generation": world.records._generation,
            "services": world.run.services, "executions": world.run.executions, "buckets": world.objects.buckets,
            "published": world.publisher.published, "posts": world.notifier.posts, "updates": world.notifier.updates,
            "answers": case.builds.answers, "submitted": case.builds.submitted, "attempts": case.builds.attempts,
            "now": world.now})
    return _RELEASED[tags]


def _restore(case: Case, state: dict[str, Any]) -> None:
    state = copy.deepcopy(state)
    world = case.world
    world.records.objects, world.records._generation = state["records"], state["generation"]
    world.run.services, world.run.executions = state["services"], state["executions"]
    world.objects.buckets, world.publisher.published = state["buckets"], state["published"]
    world.notifier.posts, world.notifier.updates = state["posts"], state["updates"]
    case.builds.answers, case.builds.submitted, case.builds.attempts = (state["answers"], state["submitted"],
                                                                        state["attempts"])
    world.now = state["now"]


def signed_push(tag: str, commit: str = COMMIT, *, pusher: str = "alice", message: str = "Release",
                delivery: str = "d-1") -> tuple[dict[str, str], bytes]:
    body = json.dumps({
        "ref": f"refs/tags/{tag}", "before": "0" * 40, "after": commit, "created": True, "deleted": False,
        "head_commit": {"id": commit, "message": message},
        "repository": {"full_name": "botbalance/botbalance"}, "pusher": {"name": pusher}, "sender": {"login": pusher},
    }).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"X-GitHub-Event": "push", "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": signature,
            "Content-Type": "application/json"}, body


def push(case: Case, tag: str, commit: str = COMMIT, **fields: str) -> Any:
    """A signed tag push through the webhook's shell, its frontend uploaded as the build would."""
    from functions.deploy_on_tag import handle
    from shared.log import logger

    headers, body = signed_push(tag, commit, **fields)
    return handle(case.world.services, headers, body, logger.bind(function="deploy_on_tag"))


def upload_frontend(case: Case, identity: str) -> None:
    prefix = frontend_prefix(case.config, identity)
    own = hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()[:12]  # each release's files differ
    for path, data in {"index.html": f"<html>{own}</html>".encode(), f"assets/index-{own}.js": own.encode()}.items():
        case.world.objects.put(case.config.state.bucket, prefix + path, data)


def event(case: Case, target: str, payload: Any, attributes: dict[str, str] | None = None,
          message_id: str = "m-1") -> None:
    """One Pub/Sub message to a `main.py` target, as Eventarc delivers it; a fault it raises asks for redelivery."""
    import main as entry

    entry.use_services(case.world.services)
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    cloud_event = SimpleNamespace(data={"message": {"data": base64.b64encode(data).decode(),
                                                    "attributes": attributes or {}, "messageId": message_id}})
    try:
        getattr(entry, target)(cloud_event)
    except TagshipError:
        pass  # logged by the target; Pub/Sub would redeliver


def build_answer(case: Case, build_id: str, tag: str, *, status: str = "SUCCESS", detail: str = "",
                 log_url: str = LOG_URL, commit: str = COMMIT) -> None:
    image = case.config.build.image
    case.builds.answers[build_id] = BuildStatus(build_id, status, tag, commit, log_url, DIGEST, f"{image}@{DIGEST}",
                                                detail, ((f"{image}:x", DIGEST),))
    case.trusted.add(log_url)


def build_message(case: Case, build_id: str, status: str, tag: str, **claims: Any) -> None:
    payload = {"id": build_id, "status": status, "substitutions": {"_TAG": tag, "_COMMIT": COMMIT}, **claims}
    event(case, "deploy_progress", payload, {"buildId": build_id, "status": status}, f"b-{build_id}-{status}")


def release(case: Case, tag: str, **fields: str) -> str:
    """A tag pushed, built and deployed through the shells; returns its build id ("" when the push started none)."""
    answer = push(case, tag, **fields)
    build_id = answer.body.get("build_id") or ""
    if answer.status == 202 and build_id:
        found = case.world.store.release(tag)
        upload_frontend(case, found[0].identity if found else tag)
        build_answer(case, build_id, tag)
        build_message(case, build_id, "SUCCESS", tag)
    return build_id


TWO_LIVE = ("v1.0.0", "v1.1.0")


def tick(case: Case, message_id: str = "tick-1") -> None:
    event(case, "health_watchdog", {}, {}, message_id)


def rollback(case: Case, request: dict[str, Any], message_id: str = "r-1") -> None:
    event(case, "rollback", request, {}, message_id)


# -- the properties -------------------------------------------------------------------------------------------------
_LINK = re.compile(r"<(https?://[^|<>]*)\|([^|<>]*)>")
_LONE_AMPERSAND = re.compile(r"&(?!amp;|lt;|gt;)")


def slack_texts(case: Case) -> list[str]:
    return [text for text, _ in case.world.notifier.posts] + list(case.world.notifier.updates.values())


def check_slack(case: Case, what: str) -> None:
    trusted_links = {link(url, label) for url in case.trusted for label in LABELS} - {""}
    for text in slack_texts(case):
        shown = f"{what}: {text[:300]!r}"
        assert len(text) <= TEXT_LIMIT, f"{len(text)} characters posted; {shown}"
        for found in _LINK.finditer(text):
            assert found.group(0) in trusted_links, f"a link tagship did not make: {found.group(0)[:200]!r}; {shown}"
        bare = _LINK.sub("", text)
        assert "<" not in bare and ">" not in bare, f"Slack markup from outside: {shown}"
        assert not _LONE_AMPERSAND.search(bare), f"an unescaped & from outside: {shown}"


def check_log(case: Case, what: str) -> None:
    lines = case.stream.getvalue().split("\n")
    assert lines[-1] == "", f"{what}: the log does not end with a newline"
    for line in lines[:-1]:
        assert len(line) < LINE_LIMIT, f"{what}: a log line of {len(line)} characters: {line[:300]!r}"
        entry = json.loads(line)
        assert isinstance(entry, dict) and entry.get("severity") and isinstance(entry.get("message"), str), line[:300]
        assert "\r" not in line, f"{what}: a carriage return in a log line: {line[:300]!r}"


@dataclass
class Source:
    """One source of outside text: the text it is fed and how it reaches the shells."""

    strategy: Any
    scenario: Callable[[Case, Any], None]
    live: tuple[str, ...] = ()  # the releases live before the case begins
    pattern: str | None = None
    told: Callable[[Case, Any], bool] | None = None  # whether this case's text reached Slack (for coverage)


# -- the sources ------------------------------------------------------------------------------------------------------
semver = st.builds(lambda a, b, c: f"v{a}.{b}.{c}", st.integers(2, 9), st.integers(0, 9), st.integers(0, 9))


def tag_under_default_pattern(case: Case, tag: str) -> None:
    release(case, tag)
    if case.world.store.release(tag) is not None:  # it matched: what a person sees of it later, too
        push(case, tag, OTHER_COMMIT, delivery="d-2")


def tag_under_permissive_pattern(case: Case, tag: str) -> None:
    release(case, tag)
    push(case, tag, OTHER_COMMIT, delivery="d-2")  # moved after its release: refused, told with the tag
    rollback(case, {"to": "previous", "from": tag, "reason": "fuzz"})
    rollback(case, {"to": tag, "reason": "forward again"}, "r-2")
    case.http.unhealthy.add(case.world.run.base_url)  # the watchdog finds the live release unhealthy
    tick(case)
    found = case.world.records.objects.get(f"releases/{tag}.json")
    if found is not None:  # and its record broken: refused by name
        case.world.records.objects[f"releases/{tag}.json"] = ({**found[0], "state": "unknown"}, found[1] + 1000)
        tick(case, "tick-2")
        event(case, "deploy_progress", {"kind": "drive", "tag": tag}, {}, "drive-1")


def pusher_name(case: Case, name: str) -> None:
    release(case, "v1.0.0", pusher=name)
    event(case, "deploy_progress", {"kind": "drive", "tag": "v1.0.0"}, {}, "drive-1")


def head_commit_message(case: Case, message: str) -> None:
    release(case, "v1.0.0", message=message)


@st.composite
def rollback_requests(draw: Any) -> dict[str, Any]:
    request: dict[str, Any] = {"to": "previous", "from": "v1.1.0", "reason": "errors", "requested_by": "alice",
                               "trigger": "manual"}
    for index, key in enumerate(draw(st.lists(st.sampled_from(sorted(request)), min_size=1, unique=True))):
        request[key] = draw(hostile(huge=index == 0))  # one field of a few MB at most: a message stays cheap
    return request


def rollback_request(case: Case, request: dict[str, Any]) -> None:
    rollback(case, request)
    rollback(case, request, "r-2")  # a second copy finds its `from` no longer live


@st.composite
def incidents(draw: Any) -> dict[str, Any]:
    incident: dict[str, Any] = {
        "incident_id": "i-1", "policy_name": "API uptime", "state": draw(st.sampled_from(["open", "closed"])),
        "summary": "the API answers 503", "url": "https://console.cloud.google.com/monitoring/alerting/incidents/1",
        "policy_user_labels": {"tagship_rollback": draw(st.sampled_from(["true", "false"]))},
        "resource_display_name": "botbalance-api"}
    keys = ["incident_id", "policy_name", "summary", "url", "resource_display_name"]
    for index, key in enumerate(draw(st.lists(st.sampled_from(keys), min_size=1, unique=True))):
        incident[key] = draw(hostile(huge=index == 0))
    return {"version": "1.2", "incident": incident}


def incident(case: Case, notice: dict[str, Any]) -> None:
    url = notice["incident"]["url"]
    case.trusted.add(url)  # the incident's own link, as Monitoring sent it
    rollback(case, notice)
    if notice["incident"]["state"] == "open":
        rollback(case, {**notice, "incident": {**notice["incident"], "state": "closed"}}, "r-2")


@st.composite
def build_answers(draw: Any) -> dict[str, Any]:
    return {"status": draw(st.sampled_from(["FAILURE", "TIMEOUT", "INTERNAL_ERROR", "SUCCESS", "WORKING"])),
            "detail": draw(st.one_of(st.just(""), hostile())),
            "log_url": draw(st.one_of(st.just(LOG_URL), hostile(huge=False),
                                      hostile(huge=False).map(lambda t: Text("https://x.example/" + t))))}


def build_answer_source(case: Case, answer: dict[str, Any]) -> None:
    pushed = push(case, "v1.1.0")
    build_id = pushed.body["build_id"]
    upload_frontend(case, "v1.1.0")
    build_answer(case, build_id, "v1.1.0", status=answer["status"], detail=answer["detail"], log_url=answer["log_url"])
    build_message(case, build_id, answer["status"], "v1.1.0")


@st.composite
def build_claims(draw: Any) -> dict[str, Any]:
    """What anyone allowed to publish on cloud-builds may write in a message: never believed, only logged."""
    huge = draw(st.sampled_from(["statusDetail", "logUrl", "tag", "images", "id"]))
    claims = {key: draw(hostile(huge=key == huge)) for key in ("statusDetail", "logUrl", "tag", "images")}
    return {**claims, "id": draw(st.one_of(st.just("build-2"), hostile(huge=huge == "id")))}


def forged_build_message(case: Case, claims: dict[str, Any]) -> None:
    push(case, "v1.1.0")
    payload = {"id": claims["id"], "status": "SUCCESS", "statusDetail": claims["statusDetail"],
               "logUrl": claims["logUrl"], "substitutions": {"_TAG": claims["tag"], "_COMMIT": claims["tag"]},
               "results": {"images": [{"name": claims["images"], "digest": claims["images"]}]}}
    event(case, "deploy_progress", payload, {"buildId": str(claims["id"])[:100], "status": "SUCCESS"}, "forged")
    payload["substitutions"]["_TAG"] = "v1.1.0"
    event(case, "deploy_progress", payload, {"buildId": "build-2", "status": "SUCCESS"}, "forged-2")


CALLS = ["builds.submit", "records.create", "run.deploy_revision", "run.deploy_revision worker", "run.set_traffic",
         "run.start_migration", "migration message", "objects.copy", "records.swap pointer", "metrics.figures",
         "run.service", "http error"]
ERRORS: dict[str, Callable[[str], TagshipError]] = {"permanent": PermanentError, "transient": TransientError,
                                                   "not found": NotFound}


@st.composite
def cloud_errors(draw: Any) -> tuple[str, TagshipError]:
    call = draw(st.sampled_from(CALLS))
    return call, ERRORS[draw(st.sampled_from(sorted(ERRORS)))](draw(hostile()))


def _fail(owner: Any, method: str, error: TagshipError, when: Callable[..., bool] = lambda *a, **k: True) -> None:
    """`owner.method` raises `error` whenever `when` holds for its arguments, and answers as before otherwise."""
    real = getattr(owner, method)

    def call(*args: Any, **kwargs: Any) -> Any:
        if when(*args, **kwargs):
            raise error
        return real(*args, **kwargs)

    setattr(owner, method, call)


def cloud_error(case: Case, failing: tuple[str, TagshipError]) -> None:
    """A cloud call answers with hostile text while the next release deploys, is rolled back, and is watched."""
    call, error = failing
    world = case.world
    text = str(error)
    if call == "builds.submit":
        case.builds.failure = error
    elif call == "records.create":
        _fail(world.records, "create", error, lambda name, data: name.startswith("releases/"))
    elif call == "run.deploy_revision":
        _fail(world.run, "deploy_revision", error)
    elif call == "run.deploy_revision worker":
        _fail(world.run, "deploy_revision", error, lambda service, *a, **k: service == world.config.worker.service)
    elif call == "run.set_traffic":
        _fail(world.run, "set_traffic", error)
    elif call == "run.start_migration":
        _fail(world.run, "start_migration", error)
    elif call == "migration message":
        vars(world.run)["execution"] = lambda name: ExecutionState(name, True, False, text, "")  # ends failed
    elif call == "objects.copy":
        _fail(world.objects, "copy", error)
    elif call == "records.swap pointer":  # the deploy going live, the rollback moving back
        _fail(world.records, "swap", error, lambda name, *a: name == "pointer.json")
    elif call == "metrics.figures":
        figures = Figures()
        _fail(figures, "figures", error)
        world.services.overrides["metrics"] = figures
        world.services.__dict__.pop("metrics", None)
    elif call == "run.service":
        _fail(world.run, "service", error)
    elif call == "http error":
        case.http.answers[world.run.base_url] = HttpAnswer(0, b"", {}, 0.0, text)
    release(case, "v1.2.0")
    rollback(case, {"to": "previous", "reason": "fuzz"})
    tick(case)


@st.composite
def health_answers(draw: Any) -> dict[str, Any]:
    text = draw(hostile())
    kind = draw(st.sampled_from(["components", "body", "error", "assets", "status"]))
    return {"kind": kind, "text": text, "where": draw(st.sampled_from(["watchdog", "smoke test", "bake"]))}


def health_answer(case: Case, answer: dict[str, Any]) -> None:
    """The API's health endpoints, or the frontend, answer with hostile text: the smoke test, the bake or the watchdog
    tells what failed."""
    world, text, kind = case.world, answer["text"], answer["kind"]
    api = world.run.base_url + "/s/"  # the services' own URLs; their candidates' tag URLs are under /t/
    if kind == "components":
        got = HttpAnswer(503, json.dumps({"status": "error", "components": {text: text, "db": text}}).encode(), {}, 1.0)
    elif kind == "body":
        got = HttpAnswer(500, text.encode("utf-8", "surrogatepass"), {}, 1.0)
    elif kind == "error":
        got = HttpAnswer(0, b"", {}, 0.0, text)
    elif kind == "status":
        got = HttpAnswer(503, json.dumps({"status": text}).encode(), {}, 1.0)
    else:  # the frontend's page names assets that are not there
        page = HttpAnswer(200, f'<script src="/{text}.js"></script><link href="{text}.css">'.encode(), {}, 1.0)
        case.http.pages[world.config.frontend.url] = page
        case.http.unhealthy.add(world.config.frontend.url)
        got = HttpAnswer(503, b"", {}, 1.0)
    if answer["where"] == "watchdog":
        release(case, "v1.1.0")
        case.http.answers[api] = got
        tick(case)
        tick(case, "tick-2")
    else:
        case.http.answers[world.run.base_url + "/t/" if answer["where"] == "smoke test" else api] = got
        world.services.config = case.config.replace(deploy={"bake_seconds": 0.2})
        release(case, "v1.1.0")


@st.composite
def corrupt_records(draw: Any) -> tuple[str, Any]:
    text = draw(hostile())
    kind = draw(st.sampled_from(["release state", "release field", "release tag", "release shape", "watchdog",
                                 "watchdog live tag", "lease", "queue", "pointer"]))
    value: Any = {
        "release field": draw(st.sampled_from([{text: text}, [text], 1.5])),
        "release shape": [text],
        "watchdog": {"status": text},
        "watchdog live tag": {"status": "unhealthy", "live_tag": text, "alerted_status": "unhealthy"},
        "lease": {"tag": 5, "owner": text},
        "queue": {"waiting": [text]},
        "pointer": {"live": [text], "timeline": text},
    }.get(kind, text)
    return kind, value


def corrupt_record(case: Case, corrupt: tuple[str, Any]) -> None:
    """One of tagship's records holds hostile content; every shell that meets it names it."""
    kind, value = corrupt
    world = case.world
    objects = world.records.objects
    name, (data, generation) = "releases/v1.1.0.json", objects["releases/v1.1.0.json"]
    if kind == "release state":
        objects[name] = ({**data, "state": value}, generation + 1000)
    elif kind == "release field":
        objects[name] = ({**data, "pushed_by": value}, generation + 1000)
    elif kind == "release tag":
        objects[name] = ({**data, "tag": value}, generation + 1000)
    elif kind == "release shape":
        objects[name] = (value, generation + 1000)
    elif kind.startswith("watchdog"):
        objects["watchdog.json"] = (value, 5000)
    else:
        objects[{"lease": "lease.json", "queue": "queue.json", "pointer": "pointer.json"}[kind]] = (value, 5000)
    case.http.unhealthy.add(world.run.base_url)
    tick(case)
    event(case, "deploy_progress", {"kind": "drive", "tag": "v1.1.0"}, {}, "drive-1")
    push(case, "v1.1.0", delivery="d-again")
    rollback(case, {"to": "previous", "reason": "fuzz"})
    release(case, "v1.2.0")


def _said(case: Case, text: str) -> bool:
    """Whether some part of `text` reached Slack (escaped, as it must)."""
    from shared.text import escape

    sample = escape(text[:12]).strip()
    return bool(sample) and any(sample in posted for posted in slack_texts(case))


SOURCES: dict[str, Source] = {
    "outside: the pushed tag (default pattern)": Source(
        st.one_of(semver, hostile(), st.builds(lambda v, t: Text(v + t), semver, hostile())), tag_under_default_pattern,
        live=("v1.0.0",)),
    "outside: the pushed tag (permissive pattern)": Source(
        st.one_of(hostile(one_line=True), st.builds(lambda v, t: Text(v + t), semver, hostile(one_line=True))),
        tag_under_permissive_pattern, ("v1.0.0",), PERMISSIVE, told=_said),
    "outside: the pusher's name": Source(hostile(), pusher_name, told=_said),
    "outside: the head commit's message": Source(hostile(), head_commit_message),
    "outside: a rollback request": Source(rollback_requests(), rollback_request, TWO_LIVE,
                                          told=lambda case, request: _said(case, request["reason"])),
    "outside: a Monitoring incident": Source(incidents(), incident, TWO_LIVE,
                                             told=lambda case, notice: _said(case, notice["incident"]["summary"])),
    "outside: a build's answer": Source(build_answers(), build_answer_source, ("v1.0.0",),
                                        told=lambda case, answer: _said(case, answer["detail"])),
    "outside: a forged build message": Source(build_claims(), forged_build_message, ("v1.0.0",)),
    "outside: a cloud call's error": Source(cloud_errors(), cloud_error, TWO_LIVE,
                                            told=lambda case, failing: _said(case, str(failing[1]))),
    "outside: a health answer": Source(health_answers(), health_answer, ("v1.0.0",),
                                       told=lambda case, answer: _said(case, answer["text"])),
    "outside: a corrupt record's content": Source(corrupt_records(), corrupt_record, TWO_LIVE),
}


# -- running them -----------------------------------------------------------------------------------------------------
@dataclass
class Fuzzed:
    cases: int = 0
    told: int = 0  # cases whose outside text reached Slack


def fuzz_outside(name: str, examples: int, *, seed: int = FUZZ_SEED) -> Fuzzed:
    """Runs one source `examples` times; raises on the first case that breaks a property."""
    source = SOURCES[name]
    fuzzed = Fuzzed()

    @hypothesis_seed(seed)
    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(source.strategy)
    def run(value: Any) -> None:
        fuzzed.cases += 1
        case = new_case(source.pattern, source.live)
        try:
            source.scenario(case, value)
        finally:
            log.set_stream(None)
        what = f"{name} {repr(value)[:300]}"
        check_slack(case, what)
        check_log(case, what)
        if source.told is not None and source.told(case, value):
            fuzzed.told += 1

    run()
    return fuzzed


def run_outside_fuzzing(examples: int, *, seed: int = FUZZ_SEED) -> tuple[dict[str, int], list[str]]:
    """Every source; (cases tried per source, failures)."""
    counts: dict[str, int] = {}
    failures: list[str] = []
    for name in SOURCES:
        try:
            counts[name] = fuzz_outside(name, examples, seed=seed).cases
        except Exception as error:  # noqa: BLE001 - reported with the others
            counts[name] = 0
            failures.append(f"{name}: {str(error).splitlines()[0][:300]}")
    return counts, failures


# -- the tests ----------------------------------------------------------------------------------------------------------
def _fuzzed(name: str) -> None:
    fuzzed = fuzz_outside(name, FUZZ_EXAMPLES)
    assert fuzzed.cases >= FUZZ_EXAMPLES // 2
    if SOURCES[name].told is not None:
        assert fuzzed.told > 0, f"{name}: no case's text ever reached Slack; the source is not exercised"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", list(SOURCES))
def test_outside_text_reaches_slack_as_text_and_the_log_as_bounded_json_lines(name):
    _fuzzed(name)
