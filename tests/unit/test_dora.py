import pytest

from shared.dora import DAY, dora
from shared.release import new_release

NOW = 100 * DAY


def released(tag, at, *path):
    release = new_release(tag, "c", "alice", "d", at)
    for state, offset in path:
        release = release.move(state, at + offset)
    return release


LIVE_PATH = [("migrating", 10), ("deploying", 20), ("publishing", 30), ("verifying", 40), ("live", 60)]


def test_no_releases_gives_no_figures_rather_than_zeros():
    figures = dora([], now=NOW)
    assert figures.deployments == 0
    assert figures.lead_time_median_seconds is None
    assert figures.change_failure_rate is None
    assert figures.time_to_restore_median_seconds is None


def test_counts_only_releases_inside_the_window():
    old = released("v0", NOW - 31 * DAY, *LIVE_PATH)
    new = released("v1", NOW - DAY, *LIVE_PATH)
    figures = dora([old, new], now=NOW, window_days=30)
    assert figures.deployments == 1
    assert figures.deployment_frequency_per_day == pytest.approx(1 / 30)
    assert figures.lead_time_median_seconds == 60


def test_a_rolled_back_release_is_a_failed_change_and_its_restore_is_timed():
    good = released("v1", NOW - 2 * DAY, *LIVE_PATH)
    bad = released("v2", NOW - DAY, *LIVE_PATH, ("rolled_back", 360))
    figures = dora([good, bad], now=NOW)
    assert figures.change_failure_rate == 0.5
    assert figures.time_to_restore_median_seconds == 300


def test_a_build_failure_never_reached_users_and_is_not_a_failed_change():
    good = released("v1", NOW - 2 * DAY, *LIVE_PATH)
    broken = released("v2", NOW - DAY, ("failed", 30))
    assert dora([good, broken], now=NOW).change_failure_rate == 0.0


def test_time_to_restore_counts_from_when_the_failure_was_reported_when_the_rollback_recorded_it():
    bad = released("v2", NOW - DAY, *LIVE_PATH, ("rolled_back", 360))
    reported = bad.with_step("incident", "started", NOW - DAY + 300)
    assert dora([reported], now=NOW).time_to_restore_median_seconds == 60


def test_lead_time_counts_from_the_push_to_all_the_api_traffic_canary_steps_included_bake_left_out():
    canaried = released("v1", NOW - DAY, *LIVE_PATH).with_step("canary", "started", NOW - DAY + 20).with_step(
        "deploy_api", "finished", NOW - DAY + 45)
    assert dora([canaried], now=NOW).lead_time_median_seconds == 45


def test_a_canary_that_failed_reached_users_and_is_a_failed_change():
    good = released("v1", NOW - 2 * DAY, *LIVE_PATH)
    canary = released("v2", NOW - DAY, ("migrating", 10), ("deploying", 20), ("failed", 90)).with_step(
        "canary", "started", NOW - DAY + 30)
    assert dora([good, canary], now=NOW).change_failure_rate == 0.5
