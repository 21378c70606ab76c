"""The deploy's decisions, as tables: what each observation means, at the edges of every deadline."""
import pytest

from shared.core.deploy import (
    DONE,
    Fail,
    HandOver,
    Wait,
    bake_verdict,
    canary_pause,
    migration_verdict,
    moved_roles,
    next_step,
    restores,
    smoke_verdict,
)


def migration(**overrides):
    facts = {"done": False, "succeeded": False, "message": "", "started_at": 0.0, "now": 10.0, "timeout": 600.0,
             "until": 480.0, "pause": 1.0}
    return migration_verdict(**{**facts, **overrides})


@pytest.mark.parametrize(
    "overrides, expected",
    [
        ({"done": True, "succeeded": True}, DONE),
        ({"done": True, "succeeded": False, "message": "relation exists"},
         Fail("Migrations failed: relation exists; no traffic moved", restore=False)),
        ({"done": True, "succeeded": False}, Fail("Migrations failed: the job execution failed; no traffic moved", restore=False)),
        ({"now": 600.0, "until": 1000.0}, Wait(1.0)),
        ({"now": 600.5, "until": 1000.0}, Fail("Migrations ran longer than 10 min; no traffic moved", restore=False)),
        ({"now": 600.5, "until": 100.0}, Fail("Migrations ran longer than 10 min; no traffic moved", restore=False)),
        ({"now": 480.5}, HandOver("the migration outlasts this invocation")),
        ({"now": 480.0}, Wait(1.0)),
        ({"done": True, "succeeded": True, "now": 9999.0}, DONE),
    ],
    ids=["a finished migration goes on", "a failed one says the job's message and moves nothing",
         "a failed one without a message says the job failed", "still running at exactly its timeout waits",
         "past its timeout it fails", "the timeout is judged before the budget",
         "past this invocation's budget it hands over", "at exactly the budget it still waits",
         "a migration that finished late still counts as finished"],
)
def test_a_migrations_execution_means(overrides, expected):
    assert migration(**overrides) == expected


def smoke(**overrides):
    facts = {"ok": False, "final": False, "detail": "503 on /api/health", "candidate": "api-v1", "now": 0.0,
             "deadline": 10.0, "until": 100.0, "interval": 2.0}
    return smoke_verdict(**{**facts, **overrides})


FAILED_SMOKE = Fail("Smoke test failed on the candidate api-v1: 503 on /api/health; the old revision keeps all traffic",
                    restore=False)


@pytest.mark.parametrize(
    "overrides, expected",
    [
        ({"ok": True}, DONE),
        ({}, Wait(2.0)),
        ({"final": True}, FAILED_SMOKE),
        ({"now": 8.0}, Wait(2.0)),
        ({"now": 8.5}, FAILED_SMOKE),
        ({"now": 8.0, "until": 9.0}, HandOver("the smoke test outlasts this invocation")),
        ({"ok": True, "now": 50.0}, DONE),
    ],
    ids=["a healthy answer passes", "an unhealthy answer tries again after the interval",
         "a final answer (a host refusal) fails at once", "a try that lands exactly on the deadline is still made",
         "no try left before the deadline fails", "a try past this invocation's budget hands over",
         "a healthy answer passes even late"],
)
def test_a_candidates_answer_means(overrides, expected):
    assert smoke(**overrides) == expected


def bake(**overrides):
    facts = {"ok": True, "detail": "ok", "now": 0.0, "deadline": 60.0, "until": 100.0, "interval": 5.0}
    return bake_verdict(**{**facts, **overrides})


@pytest.mark.parametrize(
    "overrides, expected",
    [
        ({}, Wait(5.0)),
        ({"ok": False, "detail": "500 on /api/health/detailed"},
         Fail("Health failed while verifying: 500 on /api/health/detailed; rolled back", restore=True)),
        ({"now": 55.0}, Wait(5.0)),
        ({"now": 55.5}, DONE),
        ({"now": 50.0, "until": 52.0}, HandOver("the bake outlasts this invocation")),
        ({"ok": False, "now": 59.0}, Fail("Health failed while verifying: ok; rolled back", restore=True)),
        ({"deadline": 0.0}, DONE),
    ],
    ids=["a healthy probe waits for the next", "an unhealthy probe fails and gives the unit back",
         "a probe that lands exactly on the deadline is still made", "no probe left before the deadline: done",
         "a probe past this invocation's budget hands over", "a failure in the last interval still fails",
         "a bake of zero seconds is one probe"],
)
def test_a_probe_during_the_bake_means(overrides, expected):
    assert bake(**overrides) == expected


@pytest.mark.parametrize(
    "recorded, share, expected",
    [
        ((), {"api": 0, "worker": 0}, set()),
        (("api",), {"worker": 0}, {"api"}),
        ((), {"api": 100, "worker": 0}, {"api"}),
        (("api",), {"worker": 100}, {"api", "worker"}),
        ((), {"api": 10}, {"api"}),
    ],
    ids=["nothing recorded and nothing served", "as recorded", "the cloud serves what the record missed",
         "both, by record and by the cloud", "any share counts"],
)
def test_the_roles_a_release_holds(recorded, share, expected):
    assert moved_roles(recorded, share) == expected


@pytest.mark.parametrize(
    "moved, published, kept, expected",
    [
        (set(), False, True, set()),
        ({"api"}, False, True, {"api"}),
        ({"api", "worker"}, True, True, {"api", "worker", "frontend"}),
        ({"api", "worker"}, True, False, {"api", "worker"}),
        ({"api", "frontend"}, False, True, {"api"}),
    ],
    ids=["nothing moved gives nothing back", "only what moved", "a published frontend goes back too",
         "unless no previous frontend is kept", "the frontend counts only when published"],
)
def test_what_a_failed_release_gives_back(moved, published, kept, expected):
    assert restores(moved=moved, frontend_published=published, has_previous_frontend=kept) == expected


@pytest.mark.parametrize(
    "state, step",
    [("building", "start"), ("migrating", "migrate"), ("deploying", "deploy"), ("publishing", "publish"),
     ("verifying", "verify"), ("live", "finish"), ("failed", "finish"), ("rolled_back", "finish")],
    ids=["built: start", "migrate", "deploy", "publish", "verify", "live: finish", "failed: finish",
         "rolled back: finish"],
)
def test_the_step_each_state_runs_next(state, step):
    assert next_step(state) == step


@pytest.mark.parametrize("now, changes_at, until, expected", [
    (100.0, None, 400.0, Wait(5.0)),
    (100.0, 102.0, 400.0, Wait(2.0)),
    (100.0, 105.0, 400.0, Wait(5.0)),
    (100.0, 300.0, 400.0, Wait(5.0)),
    (100.0, 99.0, 400.0, Wait(0.0)),
    (396.0, None, 400.0, HandOver("the canary step outlasts this invocation")),
    (395.0, None, 400.0, Wait(5.0)),
    (399.0, 400.0, 400.0, Wait(1.0)),
], ids=["nothing to wait for but new figures: a probe interval",
        "the answer changes sooner than a probe interval: only until then",
        "the answer changes exactly a probe interval away: a probe interval",
        "the answer changes much later: a probe interval, so controls and figures are read meanwhile",
        "a moment already passed is no wait at all",
        "a pause past this invocation's budget hands over",
        "a pause ending exactly at the budget stays",
        "a short pause that ends at the budget stays"])
def test_how_long_a_canary_step_waits_before_it_is_judged_again(now, changes_at, until, expected):
    assert canary_pause(now=now, changes_at=changes_at, interval=5.0, until=until) == expected
