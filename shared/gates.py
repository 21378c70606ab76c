"""Gates on starting a release, applied: the record `gates.json`, a tag held and let go, deploys paused and resumed.

The decisions are `shared.core.gates`; this module reads and writes the record (compare-and-swap on its generation,
so two deliveries or a tick and a person never both let one held tag go) and tells the channel. One path for a
signed tag push and for `python main.py start`; the scheduler's tick lets a held tag go once its window ends.
A corrupt `gates.json` is told once and holds nothing: it never blocks a release.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

from shared import webhook
from shared.core import wording
from shared.core.gates import GO, GateState, Held, Paused, decide_gate, freeze_windows
from shared.errors import CorruptRecord, PreconditionFailed
from shared.log import Logger
from shared.record_shape import Unreadable
from shared.starting import Answer, start_release
from shared.thread import tell_corrupt
from shared.wiring import Services

NAME = "gates.json"


def read(services: Services) -> tuple[GateState, int | None]:
    """The gates as recorded (nothing paused, nothing held when absent); CorruptRecord when they do not read."""
    record = services.store.records.read(NAME)
    if record is None:
        return GateState(), None
    if isinstance(record.data, Unreadable):
        raise CorruptRecord(NAME, f"not JSON: {record.data.excerpt}", record.generation)
    try:
        return GateState.from_dict(record.data), record.generation
    except ValueError as error:
        raise CorruptRecord(NAME, str(error), record.generation) from error


def _change(services: Services, change: Callable[[GateState], GateState | None]) -> GateState | None:
    """`change` applied to the record as read, written only over that version (retried when another won)."""
    for _ in range(8):
        state, generation = read(services)
        changed = change(state)
        if changed is None:
            return None
        try:
            if generation is None:
                services.store.records.create(NAME, changed.to_dict())
            else:
                services.store.records.swap(NAME, changed.to_dict(), generation)
            return changed
        except PreconditionFailed:
            continue
    raise PreconditionFailed(f"{NAME}: changed by others eight times in a row")


def start_or_hold(services: Services, start: webhook.Start, delivery: str, log: Logger, *,
                  override_by: str | None = None, override_reason: str = "") -> Answer:
    """Starts the release of `start`, unless a gate holds it: then it is the held tag (newest wins), told once."""
    try:
        state, _ = read(services)
    except CorruptRecord as error:
        tell_corrupt(services, error, log, start.tag)
        state = GateState()
    windows = freeze_windows(services.config.gates.freeze)
    gate = decide_gate(services.clock(), windows, state.paused, override=override_by is not None)
    if gate.action == GO:
        if override_by is not None:
            log.warning("gates overridden", by=override_by, reason=override_reason)
        return start_release(services, start, delivery, log)
    try:
        recorded = services.store.release(start.tag) is not None
    except CorruptRecord:
        recorded = True  # start_release refuses it and tells it, as for any push
    if recorded:  # a redelivery, a moved tag or a retry: what a tag seen again means is start_release's to say
        return start_release(services, start, delivery, log)
    held = Held(start.tag, start.commit, start.pushed_by, delivery, services.clock())
    displaced: list[Held] = []

    def hold(current: GateState) -> GateState | None:
        displaced.clear()
        if current.held is not None and (current.held.tag, current.held.commit) == (held.tag, held.commit):
            return None  # already held: a redelivery
        if current.held is not None:
            displaced.append(current.held)
        return replace(current, held=held)

    try:
        changed = _change(services, hold)
    except CorruptRecord as error:  # held nowhere: the gate cannot be kept, and a corrupt record blocks nothing
        tell_corrupt(services, error, log, start.tag)
        return start_release(services, start, delivery, log)
    if changed is not None:
        log.warning("release held", reason=gate.reason, until=gate.until)
        services.notifier.post(wording.held(start.tag, gate.reason, gate.until,
                                            displaced[0].tag if displaced else None))
    return Answer(202, {"status": "held", "tag": start.tag, "reason": gate.reason, "until": gate.until})


def let_go(services: Services, log: Logger, *, by: str | None = None, reason: str = "") -> Answer | None:
    """The held tag started, when the gates let it go now (or `by` a person overriding them); None when nothing
    is held or it must wait on."""
    state, _ = read(services)
    if state.held is None:
        return None
    windows = freeze_windows(services.config.gates.freeze)
    if decide_gate(services.clock(), windows, state.paused, override=by is not None).action != GO:
        return None
    taken: list[Held] = []

    def take(current: GateState) -> GateState | None:
        taken.clear()
        if current.held is None:
            return None
        taken.append(current.held)
        return replace(current, held=None)

    if _change(services, take) is None or not taken:
        return None  # another tick or person let it go first
    held = taken[0]
    tagged = log.bind(tag=held.tag)
    tagged.warning("held release let go", by=by or "the gates (window ended)", reason=reason or None)
    services.notifier.post(wording.let_go(held.tag, by, reason))
    return start_release(services, webhook.Start(tag=held.tag, commit=held.commit, pushed_by=held.pushed_by),
                         held.delivery, tagged)


def pause(services: Services, by: str, reason: str, log: Logger) -> bool:
    """Deploys paused (the first pause stands: its reason is kept); whether this call paused them."""
    now = services.clock()
    changed = _change(services, lambda s: None if s.paused else replace(s, paused=Paused(now, by[:80], reason[:300])))
    if changed is not None:
        log.warning("deploys paused", by=by, reason=reason)
        services.notifier.post(wording.deploys_paused(by, reason))
    return changed is not None


def resume(services: Services, by: str, log: Logger) -> Any:
    """Deploys resumed by `by`; the held tag, if any, starts (through the gates: a freeze still holds it)."""
    changed = _change(services, lambda s: replace(s, paused=None) if s.paused else None)
    if changed is not None:
        log.warning("deploys resumed", by=by)
        services.notifier.post(wording.deploys_resumed(by))
    return let_go(services, log)
