"""Whether a Cloud Build message may move a release, and what it may deploy: tables at the edges."""
from __future__ import annotations

import pytest

from shared.build_message import BUILT, FAILED, IGNORE, PROGRESS, BuildStatus, image_repository, judge_build, owns_build

ROOT = "asia-southeast1-docker.pkg.dev/botbalance/app/api"
DIGEST = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64
COMMIT = "c" * 40


def status(state: str = "SUCCESS", *, tag: str = "v1.0.0", commit: str = COMMIT, images=((f"{ROOT}:v1.0.0", DIGEST),),
           detail: str = "") -> BuildStatus:
    first = images[0] if images else ("", "")
    return BuildStatus("b-1", state, tag, commit, "https://log", first[1], f"{first[0]}@{first[1]}", detail,
                       tuple(images))


OWNS = {
    "the recorded build is the release's": ("b-1", "b-1", None, True),
    "another build than the recorded one is not, even when it is found": ("b-2", "b-1", "b-2", False),
    "with none recorded, the build found again for the tag and commit is": ("b-1", "", "b-1", True),
    "with none recorded and none found, no build is": ("b-1", "", None, False),
    "with none recorded, a build other than the one found is not": ("b-9", "", "b-1", False),
    "a message naming no build is never the release's": ("", "", "", False),
}


@pytest.mark.parametrize("claimed, recorded, found, owned", list(OWNS.values()), ids=list(OWNS))
def test_a_build_is_the_releases_only_when_it_is_the_recorded_or_the_found_one(claimed, recorded, found, owned):
    assert owns_build(claimed, recorded, found) is owned


JUDGE = {
    "success with one digest under build.image deploys that digest": (status(), BUILT, f"{ROOT}@{DIGEST}"),
    "success with the cache tag beside it is still one digest": (
        status(images=((f"{ROOT}:v1.0.0", DIGEST), (f"{ROOT}:latest", DIGEST))), BUILT, f"{ROOT}@{DIGEST}"),
    "success with an image elsewhere only is not believed": (
        status(images=(("evil.example/x/api:v1.0.0", DIGEST),)), IGNORE, ""),
    "success under a look-alike repository is not believed": (
        status(images=((f"{ROOT}-evil:v1.0.0", DIGEST),)), IGNORE, ""),
    "success with two digests under build.image is not believed": (
        status(images=((f"{ROOT}:v1.0.0", DIGEST), (f"{ROOT}:latest", OTHER))), IGNORE, ""),
    "success with no images is not believed": (status(images=()), IGNORE, ""),
    "success with a digest that is no sha256 is not believed": (
        status(images=((f"{ROOT}:v1.0.0", "sha256:xyz"),)), IGNORE, ""),
    "a build of another tag is not this release's": (status(tag="v1.0.1"), IGNORE, ""),
    "a build of another commit is not this release's": (status(commit="d" * 40), IGNORE, ""),
    "working is progress": (status("WORKING"), PROGRESS, ""),
    "queued is progress": (status("QUEUED"), PROGRESS, ""),
    "failure fails the release": (status("FAILURE", detail="step 2 exited 1"), FAILED, ""),
    "a timeout fails the release": (status("TIMEOUT"), FAILED, ""),
    "a cancelled build fails the release": (status("CANCELLED"), FAILED, ""),
    "an expired build fails the release": (status("EXPIRED"), FAILED, ""),
}


@pytest.mark.parametrize("read, action, image", list(JUDGE.values()), ids=list(JUDGE))
def test_a_build_is_judged_on_what_cloud_build_answers(read, action, image):
    verdict = judge_build(read, tag="v1.0.0", commit=COMMIT, image_root=ROOT)
    assert (verdict.action, verdict.image) == (action, image)
    assert verdict.reason


def test_a_failure_reason_is_bounded_whatever_the_build_says():
    verdict = judge_build(status("FAILURE", detail="x" * 100_000), tag="v1.0.0", commit=COMMIT, image_root=ROOT)
    assert verdict.action == FAILED and len(verdict.reason) < 400


REPOSITORY = {
    "a tag is cut": (f"{ROOT}:v1", ROOT),
    "a digest is cut": (f"{ROOT}@{DIGEST}", ROOT),
    "a tag and a digest are cut": (f"{ROOT}:v1@{DIGEST}", ROOT),
    "a registry port stays": ("localhost:5000/app/api:v1", "localhost:5000/app/api"),
    "a bare name stays": ("api", "api"),
}


@pytest.mark.parametrize("name, root", list(REPOSITORY.values()), ids=list(REPOSITORY))
def test_an_image_name_without_its_tag_and_digest_is_its_repository(name, root):
    assert image_repository(name) == root
