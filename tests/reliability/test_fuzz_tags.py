"""Tags, property-based: every name derived from a release is its own, valid where it is used, and stable.

A release is a tag in one attempt; its identity (`shared.release.release_identity`) names everything it makes: the
API's and the worker's revisions (`revision_name`), their traffic tags (`sanitise`), the frontend prefix in the state
bucket (`shared.unit_move.frontend_prefix`, and the build's upload destination beside it) and the build's tags
(`shared.build_definition.release_build`). For any two distinct (tag, attempt) pairs, these hold:

- distinct: the two releases share no revision name, traffic tag or identity, however alike their tags read
  (`v1.0.0_x` and `v1.0.0-x`, `V1.0.0` and `v1.0.0`, `v١.0.0`, a trailing newline, tags that differ only after 40
  characters, a tag that reads as another tag's retried attempt); neither frontend prefix holds the other's files
  (`0` and `0/2`) nor is the baseline's (a tag `_baseline`); only a retried attempt's build carries an `attempt-N`
  build tag, which is how `Builds.find` tells attempts apart;
- valid: a revision name is a DNS-1035 label of at most 63 characters that starts with `<service>-`; a traffic tag is
  a DNS-1035 label of at most 24 characters, within 46 together with its service's name; a build tag matches Cloud
  Build's `^[\\w][\\w.-]{0,127}$` (localcloud/FIDELITY.md lists the rules the local cloud enforces);
- stable: the same pair gives the same names every time.

Tags are drawn from every string for the names that carry a fingerprint (revision names and traffic tags work for any
text), and from what git accepts as a tag name for the identity and the frontend prefix, which keep the tag as it is
written. The default `github.tag_pattern` accepts exactly ASCII `vN.N.N`, whole; `shared.webhook.tag_matches` is
checked against an oracle written without a regular expression.

`run_tag_fuzzing(examples, seed)` runs every property (the reliability matrix prints its counts); the tests run each
with `FUZZ_EXAMPLES` examples (env `TAGSHIP_FUZZ_EXAMPLES`, default 200), seeded (`TAGSHIP_FUZZ_SEED`), no database.
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from shared.build_definition import build_request, release_build
from shared.config import load
from shared.release import (
    FINGERPRINT_LENGTH,
    REVISION_NAME_MAX,
    TAG_AND_SERVICE_MAX,
    TRAFFIC_TAG_MAX,
    release_identity,
    revision_name,
    sanitise,
)
from shared.unit_move import frontend_prefix
from shared.webhook import tag_matches
from tests.reliability.test_fuzz import FUZZ_SEED

FUZZ_EXAMPLES = int(os.environ.get("TAGSHIP_FUZZ_EXAMPLES", "200"))
CONFIG = load()
API, WORKER = CONFIG.api.service, CONFIG.worker.service
COMMIT = "c" * 40
DNS_1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
BUILD_TAG = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
DEFAULT_PATTERN = r"^v[0-9]+\.[0-9]+\.[0-9]+$"


# -- the names of a release --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Names:
    identity: str
    revisions: dict[str, str]  # service -> revision name
    traffic_tags: dict[str, str]  # service -> traffic tag
    frontend_prefix: str
    frontend_destination: str  # where the build uploads the frontend
    build_tags: tuple[str, ...]
    build_tag_substitution: str  # the build's _TAG, which tells apart what a lossy build tag does not
    image_tag: str  # the tag its image is pushed under (one per git tag: a retried attempt rebuilds it)


def names(tag: str, attempt: int, services: tuple[str, ...] = (API, WORKER)) -> Names:
    identity = release_identity(tag, attempt)
    build = release_build(build_request(CONFIG, tag, COMMIT, attempt), CONFIG.project.id)
    return Names(
        identity=identity,
        revisions={service: revision_name(service, identity) for service in services},
        traffic_tags={service: sanitise(identity, service) for service in services},
        frontend_prefix=frontend_prefix(CONFIG, identity),
        frontend_destination=build_request(CONFIG, tag, COMMIT, attempt).frontend_destination,
        build_tags=tuple(build["tags"]),
        build_tag_substitution=build["substitutions"]["_TAG"],
        image_tag=build["substitutions"]["_IMAGE_TAG"],
    )


def fingerprinted(tag: str, attempt: int, service: str) -> tuple[str, str]:
    """The two names of `service` that carry a fingerprint of the identity: its revision and its traffic tag ("" for
    a service whose name leaves a traffic tag no room: `sanitise` refuses it, and the config check with it)."""
    identity = release_identity(tag, attempt)
    traffic = sanitise(identity, service) if len(service) <= TAG_AND_SERVICE_MAX - FINGERPRINT_LENGTH else ""
    return revision_name(service, identity), traffic


# -- strategies ----------------------------------------------------------------------------------------------------
_GIT_FORBIDDEN = set(" ~^:?*[\\\x7f") | {chr(c) for c in range(32)}


def is_git_tag_name(tag: str) -> bool:
    """What `git check-ref-format refs/tags/TAG` accepts (its rules 1 to 10), so what GitHub can push as a tag."""
    if not tag or tag == "@" or tag.endswith((".", "/")) or ".." in tag or "@{" in tag or "//" in tag:
        return False
    if any(ch in _GIT_FORBIDDEN for ch in tag):
        return False
    return all(part and not part.startswith(".") and not part.endswith(".lock") for part in tag.split("/"))


semver = st.builds(lambda a, b, c: f"v{a}.{b}.{c}", st.integers(0, 2000), st.integers(0, 99), st.integers(0, 99))
tag_alphabet = st.sampled_from(list("v0123456789.-_/+abcxyzVXABC١٢３²ⅫK\u0130ß"))
any_tag = st.one_of(semver, st.text(min_size=1, max_size=90), st.text(tag_alphabet, min_size=1, max_size=70))
# names tagship itself gives things, pushed as tags: the baseline's frontend, a retried attempt's build tag, its own
reserved = st.sampled_from(["_baseline", "attempt-2", "attempt-3", "tagship", "latest", "HEAD", "v1.0.0.attempt-2"])
git_tag = st.one_of(semver, reserved, st.text(tag_alphabet, min_size=1, max_size=70),
                    st.text(min_size=1, max_size=60)).filter(is_git_tag_name)


def _alike(base: str, how: str, n: int) -> str:
    """A tag that reads like `base`: what sanitising, lowercasing or cutting would make the same."""
    digits = "٠١٢٣٤٥٦٧٨٩"
    return {
        "dash for dot": base.replace(".", "-", 1),
        "underscore for dash": base.replace("-", "_") if "-" in base else base + "_x",
        "dash for underscore": base.replace("_", "-") if "_" in base else base + "-x",
        "upper": base.upper() if base.upper() != base else base + "A",
        "lower": base.lower() if base.lower() != base else base + "a",
        "arabic digit": "".join(digits[int(c)] if c.isascii() and c.isdigit() else c for c in base) or base + digits[1],
        "newline": base + "\n",
        "long tail": base + "x" * 40 + str(n),
        "long tail 2": base + "x" * 40 + str(n + 1),
        "plus": base + "+1",
        "slash": base + "/" + str(n),
        "retried": f"{base}.attempt-{n}",
        "space": base + " ",
    }[how]


HOW = ["dash for dot", "underscore for dash", "dash for underscore", "upper", "lower", "arabic digit", "newline",
       "long tail", "long tail 2", "plus", "slash", "retried", "space"]
attempts = st.integers(1, 4)


@st.composite
def two_releases(draw: Any, tags: Any, pushable: Callable[[str], bool] = lambda tag: True,
                 ) -> tuple[tuple[str, int], tuple[str, int]]:
    """Two distinct (tag, attempt) pairs, the second often a near twin of the first; both `pushable`."""
    first = (draw(tags), draw(attempts))
    kind = draw(st.sampled_from(["alike", "alike", "alike", "other", "same tag", "retry of"]))
    if kind == "alike":
        second = (_alike(first[0], draw(st.sampled_from(HOW)), draw(st.integers(2, 4))), draw(attempts))
    elif kind == "same tag":
        second = (first[0], draw(attempts.filter(lambda a: a != first[1])))
    elif kind == "retry of":  # `X.attempt-2` pushed as a tag of its own, beside attempt 2 of `X`
        n = draw(st.integers(2, 4))
        first, second = (first[0], n), (f"{first[0]}.attempt-{n}", 1)
    else:
        second = (draw(tags), draw(attempts))
    assume(second != first and pushable(second[0]))
    return first, second


service_names = st.from_regex(r"\A[a-z]([-a-z0-9]{0,47}[a-z0-9])?\Z")  # Cloud Run service names of up to 49


# -- the properties ------------------------------------------------------------------------------------------------
def check_fingerprinted_names(pair: tuple[tuple[str, int], tuple[str, int]], services: tuple[str, ...]) -> None:
    """Revision names and traffic tags, for any text: distinct, valid, stable."""
    (tag_a, attempt_a), (tag_b, attempt_b) = pair
    if release_identity(tag_a, attempt_a) == release_identity(tag_b, attempt_b):
        return  # two pairs of one identity: judged by check_release_names, for the tags that can be pushed
    for service in services:
        revision_a, traffic_a = fingerprinted(tag_a, attempt_a, service)
        revision_b, traffic_b = fingerprinted(tag_b, attempt_b, service)
        assert revision_a != revision_b, f"{pair}: both revisions of {service} are {revision_a}"
        assert traffic_a != traffic_b or not traffic_a, f"{pair}: both traffic tags of {service} are {traffic_a}"
        for tag, attempt, revision, traffic in ((tag_a, attempt_a, revision_a, traffic_a),
                                                (tag_b, attempt_b, revision_b, traffic_b)):
            _check_revision(service, revision, (tag, attempt))
            if traffic:
                _check_traffic_tag(service, traffic, (tag, attempt))
            assert fingerprinted(tag, attempt, service) == (revision, traffic), f"{(tag, attempt)}: names changed"


def _check_revision(service: str, revision: str, release: tuple[str, int]) -> None:
    assert DNS_1035.fullmatch(revision), f"{release}: revision {revision!r} is no DNS-1035 label"
    assert len(revision) <= REVISION_NAME_MAX, f"{release}: revision {revision!r} is {len(revision)} characters"
    assert revision.startswith(f"{service}-"), f"{release}: revision {revision!r} does not start with {service}-"


def _check_traffic_tag(service: str, traffic: str, release: tuple[str, int]) -> None:
    assert DNS_1035.fullmatch(traffic), f"{release}: traffic tag {traffic!r} is no DNS-1035 label"
    assert len(traffic) <= TRAFFIC_TAG_MAX, f"{release}: traffic tag {traffic!r} is {len(traffic)} characters"
    assert len(traffic) + len(service) <= TAG_AND_SERVICE_MAX, f"{release}: {traffic!r} and {service} pass 46"
    assert "---" not in traffic, f"{release}: {traffic!r} would split its tag URL TAG---SERVICE"


def check_release_names(pair: tuple[tuple[str, int], tuple[str, int]]) -> None:
    """Every name of two releases whose tags git can push: distinct, valid, stable."""
    (tag_a, attempt_a), (tag_b, attempt_b) = pair
    a, b = names(tag_a, attempt_a), names(tag_b, attempt_b)
    assert a.identity != b.identity, f"{pair}: both releases are {a.identity!r}"
    assert a.revisions[API] != b.revisions[API] and a.revisions[WORKER] != b.revisions[WORKER], f"{pair}: {a.revisions}"
    assert set(a.traffic_tags.values()).isdisjoint(b.traffic_tags.values()), f"{pair}: {a.traffic_tags}"
    assert a.frontend_prefix != b.frontend_prefix, f"{pair}: both frontends under {a.frontend_prefix!r}"
    assert not a.frontend_prefix.startswith(b.frontend_prefix) and not b.frontend_prefix.startswith(a.frontend_prefix), (
        f"{pair}: one frontend prefix holds the other's files ({a.frontend_prefix!r}, {b.frontend_prefix!r})")
    assert a.image_tag != b.image_tag or tag_a == tag_b, f"{pair}: both images are pushed as {a.image_tag!r}"
    baseline = frontend_prefix(CONFIG, None)
    for release, mine in ((pair[0], a), (pair[1], b)):
        assert mine.frontend_prefix != baseline, f"{release}: its frontend is the baseline's {baseline!r}"
        assert mine.frontend_destination == f"gs://{CONFIG.state.bucket}/{mine.frontend_prefix}", (
            f"{release}: the build uploads to {mine.frontend_destination!r}, the deploy reads {mine.frontend_prefix!r}")
        for service in (API, WORKER):
            _check_revision(service, mine.revisions[service], release)
            _check_traffic_tag(service, mine.traffic_tags[service], release)
        for build_tag in mine.build_tags:
            assert BUILD_TAG.fullmatch(build_tag), f"{release}: build tag {build_tag!r} is refused by Cloud Build"
        assert mine.build_tag_substitution == release[0], f"{release}: the build's _TAG is not the tag itself"
        assert BUILD_TAG.fullmatch(mine.image_tag) and mine.image_tag != "latest", (
            f"{release}: image tag {mine.image_tag!r} is refused by Docker or is the cache's")
        assert names(*release) == mine, f"{release}: its names changed between two calls"
        retried = [t for t in mine.build_tags if t.startswith("attempt-")]  # how Builds.find tells attempts apart
        assert retried == ([f"attempt-{release[1]}"] if release[1] > 1 else []), (
            f"{release}: its build tags {mine.build_tags} read as attempt {retried or 1}")


def check_default_pattern(tag: str) -> None:
    """The default pattern accepts exactly ASCII `vN.N.N`, whole: no other digits, no trailing newline."""
    parts = tag[1:].split(".") if tag.startswith("v") else []
    expected = len(parts) == 3 and all(part and all(ch in "0123456789" for ch in part) for part in parts)
    assert tag_matches(DEFAULT_PATTERN, tag) is expected, f"{tag!r}: default pattern said {not expected}"
    assert tag_matches(CONFIG.github.tag_pattern, tag) is expected, f"{tag!r}: the config's pattern said {not expected}"
    assert tag_matches(r"v\d+\.\d+\.\d+", tag) is expected, f"{tag!r}: \\d matched a digit that is not ASCII"


near_semver = st.one_of(
    semver,
    st.builds(lambda base, how, n: _alike(base, how, n), semver, st.sampled_from(HOW), st.integers(2, 4)),
    st.builds(lambda base, junk, at: base[:at] + junk + base[at:], semver,
              st.sampled_from(["\n", "\r", " ", "١", "３", "²", "V", "x", ".", "-rc.1", "\x00", "\u200b"]),
              st.integers(0, 8)),
    st.text(st.sampled_from(list("v0123456789.١３\n")), max_size=14),
    st.text(max_size=20),
)


# -- running them --------------------------------------------------------------------------------------------------
PROPERTIES: dict[str, tuple[Any, Callable[[Any], None]]] = {
    "tags: revision names and traffic tags of any text": (
        st.tuples(two_releases(any_tag), st.sampled_from([(API, WORKER), ("a",), ("x" * 38,)])),
        lambda value: check_fingerprinted_names(value[0], value[1])),
    "tags: revision names for any service name": (
        st.tuples(two_releases(any_tag), service_names),
        lambda value: check_fingerprinted_names(value[0], (value[1],))),
    "tags: every name of a release whose tag git can push": (two_releases(git_tag, is_git_tag_name),
                                                             check_release_names),
    "tags: the default pattern": (near_semver, check_default_pattern),
}


def fuzz_tags(name: str, examples: int, *, seed: int = FUZZ_SEED) -> int:
    """Runs one property `examples` times; returns how many cases ran; raises on the first that fails."""
    strategy, check = PROPERTIES[name]
    count = {"n": 0}

    @hypothesis_seed(seed)
    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def run(value: Any) -> None:
        count["n"] += 1
        check(value)

    run()
    return count["n"]


def run_tag_fuzzing(examples: int, *, seed: int = FUZZ_SEED) -> tuple[dict[str, int], list[str]]:
    """Every tag property; (cases tried per property, failures)."""
    counts: dict[str, int] = {}
    failures: list[str] = []
    for name in PROPERTIES:
        try:
            counts[name] = fuzz_tags(name, examples, seed=seed)
        except Exception as error:  # noqa: BLE001 - reported with the others
            counts[name] = 0
            failures.append(f"{name}: {str(error).splitlines()[0][:300]}")
    return counts, failures


# -- the tests -------------------------------------------------------------------------------------------------------
def _fuzzed(name: str) -> None:
    assert fuzz_tags(name, FUZZ_EXAMPLES) >= FUZZ_EXAMPLES // 2


@pytest.mark.timeout(120)
def test_two_distinct_tags_never_share_a_revision_or_traffic_tag_however_alike_they_read():
    _fuzzed("tags: revision names and traffic tags of any text")


@pytest.mark.timeout(120)
def test_revision_names_fit_cloud_run_for_every_service_name_cloud_run_allows():
    _fuzzed("tags: revision names for any service name")


@pytest.mark.timeout(120)
def test_two_releases_git_can_push_share_no_name_and_each_name_is_valid_and_stable():
    _fuzzed("tags: every name of a release whose tag git can push")


@pytest.mark.timeout(120)
def test_the_default_tag_pattern_accepts_exactly_ascii_vn_n_n_whole():
    _fuzzed("tags: the default pattern")
