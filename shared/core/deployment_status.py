"""Which GitHub deployment status a release shows, and what it says (pure: no client, no clock).

A release is one GitHub deployment of its tag to `github.environment`. Its status follows the release:
`queued` once recorded (and while it waits behind another release), `in_progress` from building to verifying,
`success` when live, `failure` when it failed, `inactive` when rolled back or superseded. GitHub's states are
error, failure, inactive, in_progress, queued, pending and success; a status's description is at most 140
characters (https://docs.github.com/en/rest/deployments/statuses#create-a-deployment-status).
"""
from __future__ import annotations

QUEUED, IN_PROGRESS, SUCCESS, FAILURE, INACTIVE = "queued", "in_progress", "success", "failure", "inactive"
GITHUB_STATES = ("error", FAILURE, INACTIVE, IN_PROGRESS, QUEUED, "pending", SUCCESS)
DESCRIPTION_MAX = 140
MARKER_KEY = "tagship"  # the deployment's payload carries {"tagship": <release identity>}: found again by it
ENDS = (FAILURE,)  # a deployment that failed moves no more

_BY_RELEASE_STATE = {
    "building": IN_PROGRESS, "migrating": IN_PROGRESS, "deploying": IN_PROGRESS, "publishing": IN_PROGRESS,
    "verifying": IN_PROGRESS, "live": SUCCESS, "failed": FAILURE, "rolled_back": INACTIVE, "superseded": INACTIVE,
}
_WORDS = {
    "building": "building", "migrating": "running migrations", "deploying": "deploying the API and the worker",
    "publishing": "publishing the frontend", "verifying": "verifying health", "live": "live",
    "failed": "failed", "rolled_back": "rolled back", "superseded": "superseded",
}


def github_state(release_state: str, waiting: bool = False) -> str:
    """The GitHub status for a release in `release_state`; `queued` while it waits for the release in flight.
    ValueError for a state tagship does not have."""
    if release_state not in _BY_RELEASE_STATE:
        raise ValueError(f"expected a release state, found {release_state[:40]!r}")
    if waiting and release_state == "building":
        return QUEUED
    return _BY_RELEASE_STATE[release_state]


def statuses_to_post(posted: str, target: str) -> tuple[str, ...]:
    """The statuses to add, in order, to a deployment whose last status posted is `posted` ("" for a deployment
    just created) so that it shows `target`: a new deployment is queued first (the release was recorded), the same
    status is never posted twice in a row, a deployment that failed moves no more, and an inactive one moves only
    back to success (a release rolled back to serves again)."""
    if posted == INACTIVE:  # made inactive by a newer success, or rolled back: only serving again moves it
        return (SUCCESS,) if target == SUCCESS else ()
    if posted in ENDS or posted == target:
        return ()
    if not posted:
        return (QUEUED,) if target == QUEUED else (QUEUED, target)
    return (target,)


def description(tag: str, github: str, release_state: str, error: str = "", *, waiting: bool = False) -> str:
    """What the status says, at most 140 characters: the tag (cut first when long), then what is happening or why
    it ended. Control characters in outside text (the tag, the error) show as spaces."""
    if github == QUEUED:
        what = "waiting for the release in flight" if waiting else "recorded"
    else:
        what = _WORDS.get(release_state, release_state)
    if error and github in (FAILURE, INACTIVE):
        what = f"{what}: {error}"
    head = _plain(tag)
    if len(head) > 40:
        head = head[:39] + "…"
    text = f"{head} {_plain(what)}"
    return text if len(text) <= DESCRIPTION_MAX else text[: DESCRIPTION_MAX - 1] + "…"


def marker(identity: str) -> dict[str, str]:
    """The payload that names a deployment as this release's (its identity: the tag, or `TAG.attempt-N`)."""
    return {MARKER_KEY: identity}


def _plain(text: str) -> str:
    return "".join(" " if ord(ch) < 32 or ord(ch) == 127 else ch for ch in text).strip()
