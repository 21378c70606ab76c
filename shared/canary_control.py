"""A person's control of a running canary, as it arrives on the rollback topic (pure parsing).

The rollback topic carries it beside rollback requests and Monitoring incidents, told apart by its `canary` key:

    gcloud pubsub topics publish tagship-rollback --message '{"canary": "pause", "tag": "v1.4.0",
        "reason": "looking at the 5xx", "requested_by": "dana"}'

`canary` is one of pause, resume, promote (now), abort; `tag` (optional: the release whose canary runs now),
`reason` and `requested_by` are strings when present. The same topic, because a control is a rollback's kin:
whoever may roll back may stop a canary, under the same IAM, and a rollback request during a canary is itself an
abort. Each control is applied once per Pub/Sub message id (the canary's state remembers every id it saw).

A release's approval (`gates.approval`) is decided the same way, by its `approval` key (approve or refuse) and the
release's `tag` (required: an approval is always of one release):

    gcloud pubsub topics publish tagship-rollback --message '{"approval": "approve", "tag": "v1.4.0",
        "requested_by": "dana"}'
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.errors import InputError
from shared.text import cut

VERBS = ("pause", "resume", "promote", "abort")
MAX_REASON, MAX_NAME, MAX_TAG = 500, 80, 200


@dataclass(frozen=True)
class CanaryControlRequest:
    kind: str  # one of VERBS
    tag: str | None  # None: the release whose canary runs now
    reason: str
    requested_by: str


def parse_canary_control(body: Mapping[str, Any], attributes: Mapping[str, str]) -> CanaryControlRequest:
    """The control in `body`, or InputError saying what was expected and what was found."""
    kind = body.get("canary")
    if kind not in VERBS:
        raise InputError(f'canary control "canary": expected one of {", ".join(VERBS)}, found {_describe(kind)}')
    tag = body.get("tag")
    if tag is not None:
        if not isinstance(tag, str) or not tag.strip() or len(tag) > MAX_TAG:
            raise InputError(f'canary control "tag": expected a tag of at most {MAX_TAG} characters or null, found '
                             f'{_describe(tag)}')
        tag = tag.strip()
    for key in ("reason", "requested_by"):
        if key in body and not isinstance(body[key], str):
            raise InputError(f'canary control "{key}": expected a string, found {_describe(body[key])}')
    reason = cut(str(body.get("reason") or "").strip(), MAX_REASON)
    by = cut(str(body.get("requested_by") or "").strip() or (attributes.get("requested_by") or "").strip()
             or "unknown", MAX_NAME)
    return CanaryControlRequest(kind, tag, reason, by)


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"


APPROVAL_VERBS = ("approve", "refuse")


@dataclass(frozen=True)
class ApprovalRequest:
    verb: str  # approve or refuse
    tag: str
    reason: str
    requested_by: str


def parse_approval(body: Mapping[str, Any], attributes: Mapping[str, str]) -> ApprovalRequest:
    """The approve or refuse in `body`, or InputError saying what was expected and what was found."""
    verb = body.get("approval")
    if verb not in APPROVAL_VERBS:
        raise InputError(f'approval "approval": expected one of {", ".join(APPROVAL_VERBS)}, found {_describe(verb)}')
    tag = body.get("tag")
    if not isinstance(tag, str) or not tag.strip() or len(tag) > MAX_TAG:
        raise InputError(f'approval "tag": expected the tag of the release waiting (at most {MAX_TAG} characters), '
                         f'found {_describe(tag)}')
    control = parse_canary_control({**body, "canary": "pause"}, attributes)  # the same rules for reason and name
    return ApprovalRequest(str(verb), tag.strip(), control.reason, control.requested_by)
