"""The canary's state as it is kept in the release record (`Release.canary`), and read back (pure).

`to_record` writes a `CanaryState` as plain JSON; `from_record` reads it back or raises `CorruptRecord` naming
the field that is wrong, as every other field of a release is refused (`shared.record_shape`): a canary whose
memory cannot be read goes no further, never guessed at. An empty object is no canary.
"""
from __future__ import annotations

import math
from typing import Any

from shared.core.canary import (
    CanaryState,
    Finding,
    JudgedStep,
    SeenControl,
    StepFigures,
    Verdict,
    release_failed,
)
from shared.core.canary_verdict import Outcome
from shared.errors import CorruptRecord

_STATE_TEXT = ("paused_by", "ending_reason", "end_reason")
_ENDINGS = (None, "promote", "abort")
_ENDS = (None, "promoted", "aborted")


def to_record(state: CanaryState) -> dict[str, Any]:
    return {
        "step": state.step, "step_started_at": state.step_started_at, "paused": state.paused,
        "paused_by": state.paused_by, "ending": state.ending, "ending_reason": state.ending_reason,
        "hold_told": state.hold_told, "ended": state.ended, "end_reason": state.end_reason,
        "controls": [{"id": c.id, "kind": c.kind, "applied": c.applied} for c in state.controls],
        "history": [{"step": j.step, "at": j.at, "led_to": j.led_to, "verdict": _verdict(j.verdict)}
                    for j in state.history],
    }


def _verdict(verdict: Verdict) -> dict[str, Any]:
    return {"outcome": verdict.outcome.value, "findings": [[f.rule, f.text] for f in verdict.findings],
            "candidate": _figures(verdict.candidate), "stable": _figures(verdict.stable),
            "unjudged": list(verdict.unjudged)}


def _figures(figures: StepFigures) -> dict[str, Any]:
    return {"requests": figures.requests, "errors": figures.errors, "p95_ms": figures.known_p95}


def history_lines(state: CanaryState) -> list[str]:
    """The canary as `python main.py history` prints it under its release: each verdict that decided something,
    with both revisions' figures, each control (applied or refused), and how it ended."""
    lines = []
    for judged in state.history:
        c, s = judged.verdict.candidate, judged.verdict.stable
        why = f": {judged.verdict.reasons}" if judged.verdict.reasons else ""
        lines.append(f"canary step {judged.step + 1}: {judged.verdict.outcome.value} -> {judged.led_to} (candidate "
                     f"{c.errors}/{c.requests} 5xx, p95 {_ms(c.known_p95)}; stable {s.errors}/{s.requests} 5xx, "
                     f"p95 {_ms(s.known_p95)}){why}")
    for control in state.controls:
        lines.append(f"canary control {control.kind} ({control.id}): {'applied' if control.applied else 'refused'}")
    if state.ended:
        lines.append(f"canary {state.ended}: {state.end_reason}")
    return lines


def _ms(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.0f} ms"


def failed_with_release(data: Any, why: str) -> Any:
    """The record of a failed release's canary (`shared.core.canary.release_failed`); no canary stays none, and a
    canary that cannot be read is left for the record's check to refuse."""
    try:
        state = from_record(data)
    except CorruptRecord:
        return data
    return data if state is None else to_record(release_failed(state, why))


class _Wrong(Exception):
    pass


def from_record(data: Any, name: str = "release", generation: int = 0) -> CanaryState | None:
    """The canary state in `data` (None for `{}`: no canary), or CorruptRecord saying which field is wrong."""
    if data == {}:
        return None
    try:
        return _state(data)
    except _Wrong as wrong:
        raise CorruptRecord(name, f"field 'canary' is wrong: {wrong}", generation) from None


def _state(data: Any) -> CanaryState:
    _object(data, "canary")
    step = _integer(data, "step")
    if step < 0:
        raise _Wrong(f"step: expected 0 or more, found {step}")
    for key in _STATE_TEXT:
        _text(data, key, default="")
    ending, ended = data.get("ending"), data.get("ended")
    if ending not in _ENDINGS:
        raise _Wrong(f"ending: expected one of {_ENDINGS}, found {_show(ending)}")
    if ended not in _ENDS:
        raise _Wrong(f"ended: expected one of {_ENDS}, found {_show(ended)}")
    controls = tuple(SeenControl(_text(c, "id"), _text(c, "kind"), _flag(c, "applied"))
                     for c in _objects(data, "controls"))
    history = tuple(JudgedStep(_integer(j, "step"), _number(j, "at"), _verdict_of(j.get("verdict")),
                               _text(j, "led_to")) for j in _objects(data, "history"))
    return CanaryState(step, _number(data, "step_started_at"), paused=_flag(data, "paused", default=False),
                       paused_by=data.get("paused_by", ""), ending=ending,
                       ending_reason=data.get("ending_reason", ""), hold_told=_flag(data, "hold_told", default=False),
                       ended=ended, end_reason=data.get("end_reason", ""), controls=controls, history=history)


def _verdict_of(data: Any) -> Verdict:
    _object(data, "verdict")
    try:
        outcome = Outcome(data.get("outcome"))
    except ValueError:
        raise _Wrong(f"verdict outcome: expected pass, fail or inconclusive, found {_show(data.get('outcome'))}") from None
    findings = data.get("findings", [])
    if not isinstance(findings, list) or not all(
            isinstance(f, list) and len(f) == 2 and all(isinstance(x, str) for x in f) for f in findings):
        raise _Wrong(f"verdict findings: expected a list of [rule, text], found {_show(findings)}")
    unjudged = data.get("unjudged", [])
    if not isinstance(unjudged, list) or not all(isinstance(x, str) for x in unjudged):
        raise _Wrong(f"verdict unjudged: expected a list of texts, found {_show(unjudged)}")
    return Verdict(outcome, tuple(Finding(rule, text) for rule, text in findings),
                   _figures_of(data.get("candidate")), _figures_of(data.get("stable")), tuple(unjudged))


def _figures_of(data: Any) -> StepFigures:
    _object(data, "figures")
    p95 = data.get("p95_ms")
    if p95 is not None and not _is_number(p95):
        raise _Wrong(f"figures p95_ms: expected a number or null, found {_show(p95)}")
    try:
        return StepFigures(_integer(data, "requests"), _integer(data, "errors"), p95)
    except ValueError as error:
        raise _Wrong(str(error)) from None


def _object(data: Any, what: str) -> None:
    if not isinstance(data, dict):
        raise _Wrong(f"{what}: expected an object, found {_show(data)}")


def _objects(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = data.get(key, [])
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise _Wrong(f"{key}: expected a list of objects, found {_show(items)}")
    return items


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _number(data: dict[str, Any], key: str) -> float:
    value: Any = data.get(key)
    if not _is_number(value):
        raise _Wrong(f"{key}: expected a number, found {_show(value)}")
    return float(value)


def _integer(data: dict[str, Any], key: str) -> int:
    value = data.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _Wrong(f"{key}: expected an integer, found {_show(value)}")
    return value


def _text(data: dict[str, Any], key: str, default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        raise _Wrong(f"{key}: expected a text, found {_show(value)}")
    return value


def _flag(data: dict[str, Any], key: str, default: bool | None = None) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise _Wrong(f"{key}: expected true or false, found {_show(value)}")
    return value


def _show(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"
