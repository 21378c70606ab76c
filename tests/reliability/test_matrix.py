"""A seeded slice of the reliability matrix (`tools/reliability/matrix.py`), in the normal test suite.

Three of the eight fault kinds (the process killed outright always among them; the seed picks the other two), each
at a step the seed picks, plus one of the races and one broken record of the state axis; each scenario on a fresh local cloud whose
deliveries are duplicated 1-5 times, concurrently and reordered, judged by every invariant of
`tools.reliability.invariants`. `make reliability` runs the whole matrix. The seed is `TAGSHIP_RELIABILITY_SEED` (the
default keeps CI reproducible; any other value explores another slice).
"""
from __future__ import annotations

import os
import random

import pytest

from tools.reliability import matrix as reliability
from tools.reliability.faults import CONDITIONS, DIES, KINDS

SEED = int(os.environ.get("TAGSHIP_RELIABILITY_SEED", str(reliability.DEFAULT_SEED)))


SLICE_KINDS = 3  # fault kinds per run (of 8): the seed picks which, and the step of each


def ci_slice(seed: int) -> list[reliability.Scenario]:
    """A scenario for each of SLICE_KINDS fault kinds, the process killed outright always among them (the seed
    picks the others and each one's step), one race and one broken record (seeded)."""
    rng = random.Random(seed)
    by_kind: dict[str, list[reliability.Scenario]] = {kind: [] for kind in KINDS}
    canary = {s.name for s in reliability.canary_axis()}  # whole canaries, 15-100 s each: `--full` runs them
    for scenario in reliability.matrix():
        if scenario.name in canary:
            continue
        for kind in KINDS:
            if scenario.name.endswith(f" x {kind}"):
                by_kind[kind].append(scenario)
    kinds = [DIES] + rng.sample([kind for kind in KINDS if kind != DIES], SLICE_KINDS - 1)
    chosen = [rng.choice(by_kind[kind]) for kind in kinds]
    return chosen + rng.sample(reliability.races(), 1) + rng.sample(reliability.state_axis(), 1)


SLICE = ci_slice(SEED)


@pytest.fixture(scope="module", autouse=True)
def quiet():
    with reliability.quiet_logging():
        yield


@pytest.mark.timeout(180)
@pytest.mark.parametrize("scenario", SLICE, ids=[s.name for s in SLICE])
def test_the_scenario_keeps_every_invariant(scenario):
    outcome = reliability.run_scenario(scenario, SEED)
    assert outcome.passed, reliability.row(outcome)
    assert outcome.deliveries > 0


def test_the_matrix_covers_every_step_of_the_deploy_and_the_rollback_with_every_fault_kind():
    names = {s.name for s in reliability.matrix()}
    for step in reliability.DEPLOY_STEPS + reliability.ROLLBACK_STEPS + reliability.WATCH_STEPS:
        for kind in step.kinds:
            assert f"{step.phase}/{step.name} x {kind}" in names
    kinds_seen = {kind for kind in KINDS if any(n.endswith(f" x {kind}") for n in names)}
    assert kinds_seen == set(KINDS)
    assert sum(n.startswith("race/") for n in names) >= 5 and "slack/down throughout" in names


def test_the_matrix_covers_every_canary_step_and_control_with_its_fault_kinds():
    from tools.reliability.canary import CANARY_STEPS, CONTROL_TARGETS, CONTROLS

    names = {s.name for s in reliability.matrix()}
    for step in CANARY_STEPS:
        for kind in step.kinds:
            assert f"deploy/{step.name} x {kind}" in names
    for control in CONTROLS:
        for where, (_, kinds) in CONTROL_TARGETS.items():
            for kind in kinds:
                assert f"canary/{control.name} x {where} {kind}" in names
    assert {c.name for c in CONTROLS} == {"pause", "resume", "promote", "abort", "rollback"}
    assert any(s.name.startswith(("deploy/canary-", "canary/")) for s in reliability.seeded_slice(reliability.DEFAULT_SEED))


def test_the_state_axis_breaks_every_record_in_every_way_in_every_phase():
    names = {s.name for s in reliability.state_axis()}
    for record in reliability.STATE_RECORDS:
        for step in reliability.STATE_STEPS_OF.get(record, reliability.STATE_STEPS):
            for condition in reliability.STATE_CONDITIONS_OF.get(record, CONDITIONS):
                assert f"state/{step} x {record} {condition}" in names
    assert {"release", "pointer", "lease", "queue", "gates", "watchdog", "marker"} <= set(reliability.STATE_RECORDS)
    assert {step.split("/")[0] for step in reliability.STATE_STEPS} == {"deploy", "rollback", "watch"}
