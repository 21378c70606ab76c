"""A control of a running canary (pause, resume, promote now, abort), and a rollback request that arrives while a
canary runs (it aborts that canary, and rolls nothing else back): applied once to the canary's state in the
release record, told once in the release's thread. The deploy carries it out at its next look (at most a probe
interval later): `shared.core.canary.next_action` reads what a control asked.
"""
from __future__ import annotations

from shared.canary_control import CanaryControlRequest
from shared.canary_record import from_record, to_record
from shared.core import wording
from shared.core.canary import Control, ControlEffect, apply_control
from shared.errors import CorruptRecord, PermanentError
from shared.log import Logger
from shared.release import LIVE, Release
from shared.thread import reply
from shared.wiring import Services


def running_canary(services: Services) -> str | None:
    """The release whose canary runs now: the deploy lease's, with a canary not ended."""
    lease = services.store.lease()
    if lease is None or not lease.tag:
        return None
    try:
        found = services.store.release(lease.tag)
    except CorruptRecord:  # a record that cannot be read runs no canary: a rollback goes ahead as without one
        return None
    if found is None or found[0].ended or found[0].state == LIVE:
        return None
    state = from_record(found[0].canary, f"releases/{lease.tag}.json")
    return lease.tag if state is not None and state.ended is None else None


def control_canary(services: Services, request: CanaryControlRequest, message_id: str, log: Logger) -> str:
    """A person's control: applied to the canary of `request.tag` (or the one running now), or refused saying
    why (told in the channel: a person asked)."""
    tag = request.tag or running_canary(services)
    control = Control(request.kind, by=request.requested_by, reason=request.reason)
    if tag is None:
        return _refused(services, "-", "no canary is running", message_id, log)
    try:
        return apply(services, tag, control, message_id, log)
    except CorruptRecord:
        raise  # told once per version of it where it is met, as every corrupt record is
    except PermanentError as error:  # acknowledged, so never retried: the person hears it was not applied
        return _refused(services, tag, f"it could not be recorded ({str(error)[:200]}); ask again", message_id, log)


def apply(services: Services, tag: str, control: Control, message_id: str, log: Logger) -> str:
    log = log.bind(tag=tag, control=control.kind, claimed_by=control.by)
    found = services.store.release(tag)
    if found is None:
        return _refused(services, tag, f"no release {tag}", message_id, log)
    if found[0].ended or found[0].state == LIVE or not found[0].canary:
        why = f"{tag} is {found[0].state}" if found[0].canary else f"{tag} has no canary"
        return _refused(services, tag, f"{why}: nothing to control", message_id, log)
    effects: list[ControlEffect] = []

    def change(release: Release) -> Release | None:
        effects.clear()
        state = from_record(release.canary, f"releases/{tag}.json")
        if state is None:
            return None
        changed, effect = apply_control(state, control, message_id, now=services.clock())
        effects.append(effect)
        return None if changed == state else release.but(canary=to_record(changed))

    updated = services.store.update_release(tag, change) or found[0]
    if not effects:
        return _refused(services, tag, f"{tag} has no canary", message_id, log)
    effect = effects[0]
    log.info("canary control", outcome=effect.outcome, text=effect.text)
    # told once per message: a redelivery after the tell says nothing, one after the effect but before the tell
    # tells it then (the state answers it as a duplicate, so nothing is applied twice)
    if services.store.mark_once("canary-control-told", message_id or effect.text, {"outcome": effect.outcome}):
        reply(services, updated, wording.canary_control(effect.text, tag))
    return f"canary {control.kind}: {effect.outcome}"


def _refused(services: Services, tag: str, why: str, message_id: str, log: Logger) -> str:
    log.warning("canary control refused", reason=why)
    if services.store.mark_once("canary-control-told", message_id or why, {"outcome": "refused"}):
        services.notifier.post(wording.canary_control_refused(tag, why))
    return f"refused: {why}"
