"""Whether a Cloud Build message may move a release, and what it may deploy. Pure.

Anyone who can publish on the builds topic can write a message saying SUCCESS with any image, so a message is only
a hint: it names a build. The build is believed only when it is the release's own (the id on the release record,
or, before one is recorded, the build `Builds.find` finds again for the release's tag and commit), and what it
says is what Cloud Build answers for that id (`GetBuild`), never what the message says. The image deployed is
`build.image@sha256:<64 hex>`, rebuilt from the config, and only when Cloud Build reports exactly one digest under
`build.image`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

TERMINAL_FAILURES = frozenset({"FAILURE", "INTERNAL_ERROR", "TIMEOUT", "CANCELLED", "EXPIRED"})
STATUSES = frozenset({"STATUS_UNKNOWN", "PENDING", "QUEUED", "WORKING", "SUCCESS"}) | TERMINAL_FAILURES
IGNORE, PROGRESS, FAILED, BUILT = "ignore", "progress", "failed", "built"

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class BuildStatus:
    """What deploy_progress needs of a build: from a notification (a claim) or from GetBuild (the answer)."""

    build_id: str
    status: str  # QUEUED, WORKING, SUCCESS, FAILURE, INTERNAL_ERROR, TIMEOUT, CANCELLED, EXPIRED
    tag: str  # its _TAG substitution
    commit: str  # its _COMMIT substitution
    log_url: str
    digest: str  # sha256:... of the first image reported, on SUCCESS
    image: str  # that image's repository @ digest
    detail: str  # why it failed, when it did
    images: tuple[tuple[str, str], ...] = ()  # every (name, digest) in results.images


@dataclass(frozen=True)
class BuildVerdict:
    action: str  # IGNORE, PROGRESS, FAILED or BUILT
    reason: str
    image: str = ""  # on BUILT: build.image@sha256:...


def owns_build(claimed_id: str, recorded_id: str, found_id: str | None) -> bool:
    """Whether the build a message names is the release's: the recorded one, or (none recorded yet) the one
    found again for the release."""
    if not claimed_id:
        return False
    if recorded_id:
        return claimed_id == recorded_id
    return found_id is not None and claimed_id == found_id


def judge_build(read: BuildStatus, *, tag: str, commit: str, image_root: str) -> BuildVerdict:
    """What the release may do with its build as Cloud Build reports it (`read`, from GetBuild)."""
    if read.tag != tag or read.commit != commit:
        return BuildVerdict(IGNORE, f"the build is of {read.tag[:40]!r} at {read.commit[:12]!r}, "
                                    f"not of {tag} at {commit[:12]}")
    if read.status in TERMINAL_FAILURES:
        return BuildVerdict(FAILED, f"build {read.status.lower()}" + (f": {read.detail[:300]}" if read.detail else ""))
    if read.status != "SUCCESS":
        return BuildVerdict(PROGRESS, f"build {read.status.lower()}")
    digests = {digest for name, digest in read.images if image_repository(name) == image_root}
    if not digests:
        return BuildVerdict(IGNORE, f"the build reports no image under {image_root}")
    if len(digests) > 1:
        return BuildVerdict(IGNORE, f"the build reports {len(digests)} different digests under {image_root}")
    digest = digests.pop()
    if not _DIGEST.match(digest):
        return BuildVerdict(IGNORE, f"the image under {image_root} has no sha256 digest: {digest[:80]!r}")
    return BuildVerdict(BUILT, "built", f"{image_root}@{digest}")


def image_repository(name: str) -> str:
    """`host[:port]/path/app[:tag][@digest]` -> `host[:port]/path/app`."""
    name = name.split("@", 1)[0]
    head, slash, last = name.rpartition("/")
    if ":" in last:
        last = last.split(":", 1)[0]
    return f"{head}{slash}{last}"
