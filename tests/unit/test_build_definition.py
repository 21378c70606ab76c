"""The release build as Cloud Build takes it: its graph, its source, its account, and what it refuses to make."""
from __future__ import annotations

import re
from dataclasses import replace

import pytest

from shared.build_definition import (SUBSTITUTIONS, TOKEN_ENV, BuildRequest, build_location, build_tag,
                                     release_build)
from shared.errors import ConfigError, InputError

PROJECT = "botbalance"
CONNECTION = "projects/botbalance/locations/asia-southeast1/connections/github/repositories/botbalance"
REQUEST = BuildRequest(tag="v1.4.0", commit="c" * 40, repository="acme/botbalance",
                       image="asia-southeast1-docker.pkg.dev/botbalance/app/api", frontend_dir="frontend",
                       frontend_destination="gs://state/frontend/v1.4.0/", timeout_seconds=1200, context="backend")
REFERENCE = re.compile(r"\$\{(_[A-Z0-9_]+)\}|\$(_[A-Z0-9_]+)")


def texts(build: dict) -> list[str]:
    return [arg for step in build["steps"] for arg in [*step.get("args", []), step.get("dir", "")]] + build["images"]


def steps(build: dict) -> dict[str, dict]:
    return {step["id"]: step for step in build["steps"]}


def test_every_user_substitution_is_referenced_and_every_reference_is_defined():
    build = release_build(REQUEST, PROJECT)
    referenced = {a or b for text in texts(build) for a, b in REFERENCE.findall(text.replace("$$", ""))}
    assert set(build["substitutions"]) == referenced == set(SUBSTITUTIONS)


def test_the_frontend_builds_beside_the_image_and_the_push_waits_for_the_image_only():
    graph = steps(release_build(REQUEST, PROJECT))
    assert graph["image"]["waitFor"] == graph["frontend-install"]["waitFor"] == ["fetch"]
    assert graph["push"]["waitFor"] == ["image"]
    assert graph["frontend-upload"]["waitFor"] == ["frontend-build"]


def test_the_image_reuses_the_previous_layers_and_is_listed_so_cloud_build_reports_its_digest():
    build = release_build(REQUEST, PROJECT)
    args = steps(build)["image"]["args"]
    assert args[args.index("--cache-from") + 1] == "${_IMAGE}:latest" and "BUILDKIT_INLINE_CACHE=1" in args
    assert args[-1] == "backend" and args[args.index("--file") + 1] == "backend/Dockerfile"
    assert build["images"] == ["${_IMAGE}:${_IMAGE_TAG}", "${_IMAGE}:latest"]


SOURCES = {
    "a repository connection is the source and no fetch step runs": (
        replace(REQUEST, repository_connection=CONNECTION), "connected", False),
    "a token secret authenticates the fetch through secretEnv": (
        replace(REQUEST, github_token_secret="gh-token"), "token", True),
    "neither fetches a public repository without credentials": (REQUEST, "public", True),
}


@pytest.mark.parametrize("request_, kind, fetches", list(SOURCES.values()), ids=list(SOURCES))
def test_the_source_comes_from_the_connection_or_a_fetch_of_the_one_commit(request_, kind, fetches):
    build = release_build(request_, PROJECT)
    graph = steps(build)
    assert ("fetch" in graph) is fetches
    if kind == "connected":
        assert build["source"]["connectedRepository"] == {"repository": CONNECTION, "revision": "c" * 40}
        assert graph["image"]["waitFor"] == ["-"]
    if kind == "token":
        assert graph["fetch"]["secretEnv"] == [TOKEN_ENV]
        assert build["availableSecrets"]["secretManager"] == [
            {"versionName": "projects/botbalance/secrets/gh-token/versions/latest", "env": TOKEN_ENV}]
        script = graph["fetch"]["args"][1]
        assert f"$${TOKEN_ENV}" in script and "set -x" not in script and "config --global" not in script
    if kind == "public":
        assert "availableSecrets" not in build and "secretEnv" not in graph["fetch"]


def test_a_build_account_sends_its_logs_to_cloud_logging_as_cloud_build_requires():
    account = "tagship-build@botbalance.iam.gserviceaccount.com"
    build = release_build(replace(REQUEST, service_account=account), PROJECT)
    assert build["serviceAccount"] == f"projects/botbalance/serviceAccounts/{account}"
    assert build["options"] == {"logging": "CLOUD_LOGGING_ONLY"}
    assert "serviceAccount" not in release_build(REQUEST, PROJECT)


def test_a_dollar_in_the_config_reaches_the_step_as_written():
    build = release_build(replace(REQUEST, context="back$end", frontend_dir="web$X"), PROJECT)
    graph = steps(build)
    assert graph["image"]["args"][-1] == "back$$end" and graph["frontend-install"]["dir"] == "web$$X"


REFUSED = {
    "a context outside the repository": (replace(REQUEST, context="../elsewhere"), ConfigError, "build.context"),
    "an absolute context": (replace(REQUEST, context="/etc"), ConfigError, "build.context"),
    "a Dockerfile that climbs out": (replace(REQUEST, dockerfile="../../Dockerfile"), ConfigError, "build.dockerfile"),
    "a frontend directory outside the repository": (replace(REQUEST, frontend_dir="../x"), ConfigError,
                                                   "build.frontend_dir"),
    "a commit that is not hex": (replace(REQUEST, commit="$(curl evil)"), InputError, "commit sha"),
    "a commit too short to name one": (replace(REQUEST, commit="abc"), InputError, "commit sha"),
    "a tag with a newline": (replace(REQUEST, tag="v1\nv2"), InputError, "expected a tag"),
    "no tag": (replace(REQUEST, tag=""), InputError, "expected a tag"),
    "a repository that is not owner/name": (replace(REQUEST, repository="acme/bot/balance"), ConfigError,
                                            "github.repository"),
    "a connection that is no repository resource": (replace(REQUEST, repository_connection="github/botbalance"),
                                                    ConfigError, "build.repository_connection"),
}


@pytest.mark.parametrize("request_, error, says", list(REFUSED.values()), ids=list(REFUSED))
def test_a_build_that_could_not_run_as_meant_is_refused_before_it_is_submitted(request_, error, says):
    with pytest.raises(error, match=re.escape(says)):
        release_build(request_, PROJECT)


TAGS = {
    "a plain version stays": ("v1.4.0", "v1.4.0"),
    "a slash becomes a dash": ("release/v1", "release-v1"),
    "a leading dot gets a letter before it": (".hidden", "t.hidden"),
    "non-ASCII letters become dashes": ("v1-é", "v1--"),
    "a long tag is cut to 128": ("v" * 300, "v" * 128),
    "a tag that reads as a retried attempt's build tag gets a letter before it": ("attempt-2", "tattempt-2"),
}


@pytest.mark.parametrize("tag, label", list(TAGS.values()), ids=list(TAGS))
def test_a_git_tag_becomes_a_build_tag_cloud_build_accepts(tag, label):
    assert build_tag(tag) == label
    assert re.fullmatch(r"[\w][\w.-]{0,127}", build_tag(tag), re.ASCII)


LOCATIONS = {
    "a connection's build runs in the connection's region": (CONNECTION, "asia-southeast1"),
    "without a connection the build runs globally": ("", "global"),
    "a malformed connection does not pick a region": ("projects/p/connections/c", "global"),
}


@pytest.mark.parametrize("connection, location", list(LOCATIONS.values()), ids=list(LOCATIONS))
def test_the_build_runs_where_its_source_is(connection, location):
    assert build_location(connection) == location


IMAGE_TAGS = [
    # (what a git tag is pushed as, its image tag, why)
    ("v1.4.0", "v1.4.0", "a tag Docker takes stays as it is"),
    ("release/1.0", "release-1.0-05c07dbf", "a slash is no part of an image tag: read as far as it can be"),
    ("v1.0.0+build.5", "v1.0.0-build.5-2306f290", "semver's build metadata: '+' is refused by Docker"),
    ("latest", "latest-5e1e2bca", "the cache's own tag is never a release's"),
    ("-rc", "t-rc-bc5ea5c7", "an image tag opens with a word character"),
]


@pytest.mark.parametrize("tag,expected,why", IMAGE_TAGS, ids=[row[2] for row in IMAGE_TAGS])
def test_a_release_image_is_pushed_under_a_tag_docker_takes_and_no_other_release_shares(tag, expected, why):
    from shared.build_definition import image_tag

    assert image_tag(tag) == expected
    assert re.fullmatch(r"[\w][\w.-]{0,127}", image_tag(tag), re.ASCII)


def test_an_image_tag_of_a_very_long_tag_is_cut_to_dockers_128_and_keeps_its_fingerprint():
    from shared.build_definition import image_tag

    a, b = image_tag("a" * 300), image_tag("a" * 301)
    assert len(a) == len(b) == 128 and a != b
