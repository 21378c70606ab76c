"""A person's approve or refuse of a release waiting for it (`gates.approval`), as it arrives on the rollback topic:
applied once to the release's approval in its record (`shared.core.approval.decide`), told once in its thread.
The deploy, looking at the record every probe interval, goes on or ends the release.
"""
from __future__ import annotations

from shared.canary_control import ApprovalRequest
from shared.core import wording
from shared.core.approval import APPLIED, Effect, decide
from shared.errors import CorruptRecord, PermanentError
from shared.log import Logger
from shared.release import LIVE, Release, approval_of
from shared.thread import refresh_root, reply
from shared.wiring import Services


def decide_approval(services: Services, request: ApprovalRequest, message_id: str, log: Logger) -> str:
    tag = request.tag
    log = log.bind(tag=tag, approval=request.verb, claimed_by=request.requested_by)
    found = services.store.release(tag)
    if found is None:
        return _not_applied(services, tag, f"no release {tag}", message_id, log)
    release = found[0]
    if not release.approval:
        why = f"{tag} is {release.state}" if release.ended or release.state == LIVE else f"{tag} has asked for none yet"
        return _not_applied(services, tag, f"{why}: nothing to approve", message_id, log)
    name = f"releases/{tag}.json"
    effects: list[Effect] = []
    max_wait = services.config.gates.approval_max_wait_seconds

    def change(current: Release) -> Release | None:
        effects.clear()
        state = approval_of(current.approval, name)
        if state is None:
            return None
        changed, effect = decide(state, request.verb, by=request.requested_by, reason=request.reason,
                                 message_id=message_id, now=services.clock(), max_wait=max_wait)
        effects.append(effect)
        return None if changed == state else current.but(approval=changed.to_dict())

    try:
        updated = services.store.update_release(tag, change) or release
    except CorruptRecord:
        raise  # told once per version of it where it is met, as every corrupt record is
    except PermanentError as error:  # acknowledged, so never retried: the person hears it was not applied
        return _not_applied(services, tag, f"it could not be recorded ({str(error)[:200]}); ask again", message_id, log)
    if not effects:
        return _not_applied(services, tag, f"{tag} has asked for none", message_id, log)
    effect = effects[0]
    log.info("approval", outcome=effect.outcome, text=effect.text)
    if services.store.mark_once("approval-told", message_id or effect.text, {"outcome": effect.outcome}):
        reply(services, updated, wording.approval_decided(effect.text, tag))
        if effect.outcome == APPLIED:
            refresh_root(services, updated)
    return f"approval {request.verb}: {effect.outcome}"


def _not_applied(services: Services, tag: str, why: str, message_id: str, log: Logger) -> str:
    log.warning("approval not applied", reason=why)
    if services.store.mark_once("approval-told", message_id or why, {"outcome": "not applied"}):
        services.notifier.post(wording.approval_refused_request(tag, why))
    return f"not applied: {why}"
