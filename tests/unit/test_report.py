"""What the release report draws from the records (pure), and the page that renders it."""
from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from shared.core.report import (
    CANARY,
    STEP,
    TAG_LIMIT,
    TEXT_LIMIT,
    phases,
    report_view,
    rollback_marks,
    step_bars,
)
from shared.dora import DAY, dora_series
from shared.release import new_release
from shared.report_page import chart_points, figure_text, render

NOW = 100 * DAY
LIVE_PATH = [("migrating", 10), ("deploying", 20), ("publishing", 30), ("verifying", 40), ("live", 60)]


def released(tag, at, *path, **changes):
    release = new_release(tag, "c" * 40, "alice", "d", at)
    for state, offset in path:
        release = release.move(state, at + offset, error=changes.pop("error", "") if state == "rolled_back" else "")
    return release.but(**changes) if changes else release


@pytest.mark.parametrize("path, expected", [
    pytest.param([], [("building", None)], id="a release just pushed is building with no end yet"),
    pytest.param([("migrating", 12)], [("building", 12), ("migrating", None)],
                 id="each state ends when the next begins"),
    pytest.param([*LIVE_PATH, ("rolled_back", 360)],
                 [("building", 10), ("migrating", 10), ("deploying", 10), ("publishing", 10), ("verifying", 20),
                  ("live", 300), ("rolled_back", None)], id="a rolled back release was live until its rollback"),
])
def test_phases(path, expected):
    got = [(p.state, p.seconds) for p in phases(released("v1", NOW, *path))]
    assert got == expected


@pytest.mark.parametrize("steps, expected", [
    pytest.param({"migrate": {"started": 5.0, "finished": 6.5}}, [("migrate", STEP, 1.5)],
                 id="a finished step has its duration"),
    pytest.param({"verify": {"started": 9.0}}, [("verify", STEP, None)], id="a step still running has no duration"),
    pytest.param({"deploy_api": {"started": 3.0, "finished": 4.0}, "migrate": {"started": 1.0, "finished": 2.0}},
                 [("migrate", STEP, 1.0), ("deploy_api", STEP, 1.0)], id="steps are drawn in the order they started"),
    pytest.param({"canary_1": {"started": 3.0, "finished": 303.0}, "deploy_api": {"started": 1.0, "finished": 2.0}},
                 [("deploy_api", STEP, 1.0), ("canary_1", CANARY, 300.0)], id="a canary step is marked as one"),
    pytest.param({"incident": {"finished": 7.0}}, [("incident", STEP, None)],
                 id="a step whose start was never recorded is drawn last with no duration"),
    pytest.param({"migrate": {"started": 5.0, "finished": 4.0}}, [("migrate", STEP, 0.0)],
                 id="a clock that stepped back gives zero, never a negative duration"),
])
def test_step_bars(steps, expected):
    got = [(b.name, b.kind, b.seconds) for b in step_bars(released("v1", 0.0).but(steps=steps))]
    assert got == expected


@pytest.mark.parametrize("timeline, expected_to", [
    pytest.param([("v1", NOW - 500), ("v2", NOW - 100), ("v1", NOW + 300)], "v1",
                 id="what served after a rollback is the next entry of the pointer's timeline"),
    pytest.param([("v1", NOW - 500), ("v2", NOW - 100)], None,
                 id="a timeline that never moved on names nothing"),
    pytest.param([], None, id="an empty timeline names nothing"),
    pytest.param([("v2", NOW - 100), ("v1", NOW + 300), ("v2", NOW + 400), ("v3", NOW + 900)], "v1",
                 id="a release live again later is judged by its entry before the rollback"),
])
def test_rollback_marks(timeline, expected_to):
    bad = released("v2", NOW - 100, *LIVE_PATH, ("rolled_back", 400), error="rolled back: checkout broken")
    (mark,) = rollback_marks([bad], timeline)
    assert (mark.tag, mark.at, mark.to, mark.reason) == ("v2", NOW + 300, expected_to, "checkout broken")


def test_the_current_unit_is_the_pointers_with_the_live_releases_revisions_and_image():
    live = released("v2", NOW - 100, *LIVE_PATH, revisions={"api": "api-v2", "worker": "worker-v2"},
                    image="img@sha256:abc")
    view = report_view([released("v1", NOW - 900, *LIVE_PATH), live], live="v2", previous="v1",
                       timeline=[("v1", NOW - 840), ("v2", NOW - 40)], now=NOW)
    unit = view.unit
    assert (unit.live, unit.previous, unit.since, unit.api, unit.worker, unit.image) == (
        "v2", "v1", NOW - 40, "api-v2", "worker-v2", "img@sha256:abc")
    assert [r.serving for r in view.rows] == [False, True]


def test_nothing_deployed_yet_gives_an_empty_unit_and_no_rows():
    view = report_view([], live=None, previous=None, timeline=[], now=NOW)
    assert view.rows == () and view.unit.live is None and view.unit.api == ""
    assert view.figures.deployments == 0


def test_only_releases_pushed_inside_the_window_are_rows():
    view = report_view([released("old", NOW - 40 * DAY, *LIVE_PATH), released("new", NOW - DAY, *LIVE_PATH)],
                       live="new", previous=None, timeline=[], now=NOW, window_days=30)
    assert [r.tag for r in view.rows] == ["new"]


def test_every_string_from_a_record_is_cut():
    huge = "x" * 10_000
    release = released(huge, NOW - 10, *LIVE_PATH, pushed_by=huge, revisions={"api": huge, "worker": huge},
                       steps={huge: {"started": 1.0, "finished": 2.0}})
    release = release.move("rolled_back", NOW, error=huge)
    view = report_view([release], live=huge, previous=huge, timeline=[(huge, NOW - 5)], now=NOW)
    (row,) = view.rows
    assert len(row.tag) == TAG_LIMIT and len(row.pushed_by) == TAG_LIMIT and len(row.error) == TEXT_LIMIT
    assert len(row.steps[0].name) == TAG_LIMIT
    assert len(view.unit.live or "") == TAG_LIMIT and len(view.unit.api) == TEXT_LIMIT
    assert len(view.rollbacks[0].reason) == TEXT_LIMIT


@pytest.mark.parametrize("days", [0, -1, float("nan")], ids=["zero", "negative", "nan"])
def test_a_window_that_is_not_positive_is_refused(days):
    with pytest.raises(ValueError, match="positive window"):
        report_view([], live=None, previous=None, timeline=[], now=NOW, window_days=days)


# ---- the DORA series --------------------------------------------------------------------------------------------

def test_the_series_ends_now_with_the_figures_of_today():
    good = released("v1", NOW - 20 * DAY, *LIVE_PATH)
    bad = released("v2", NOW - DAY, *LIVE_PATH, ("rolled_back", 360))
    series = dora_series([good, bad], now=NOW, window_days=30, points=4, every_days=7)
    assert [p.at for p in series] == [NOW - 21 * DAY, NOW - 14 * DAY, NOW - 7 * DAY, NOW]
    assert [p.figures.deployments for p in series] == [0, 1, 1, 2]
    assert [p.figures.change_failure_rate for p in series] == [None, 0.0, 0.0, 0.5]


def test_a_point_sees_a_release_as_it_stood_then_not_as_it_ended():
    went_bad_later = released("v1", NOW - 10 * DAY, *LIVE_PATH, ("rolled_back", 8 * DAY))
    before, after = dora_series([went_bad_later], now=NOW, window_days=30, points=2, every_days=5)
    assert before.figures.change_failure_rate == 0.0 and before.figures.time_to_restore_median_seconds is None
    assert after.figures.change_failure_rate == 1.0


@pytest.mark.parametrize("points, days, every", [(0, 30, 7), (3, 0, 7), (3, 30, 0)],
                         ids=["no points", "no window", "no spacing"])
def test_a_series_without_points_window_or_spacing_is_refused(points, days, every):
    with pytest.raises(ValueError):
        dora_series([], now=NOW, window_days=days, points=points, every_days=every)


# ---- the page ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("values, expected", [
    pytest.param([0.0, 0.0], [(24.0, 96.0), (296.0, 96.0)], id="all zero sits on the axis"),
    pytest.param([1.0, 2.0], [(24.0, 60.0), (296.0, 24.0)], id="the largest value reaches the top"),
    pytest.param([None, 3.0, None], [None, (160.0, 24.0), None], id="an unknown figure has no point"),
    pytest.param([5.0], [(160.0, 24.0)], id="one point sits in the middle"),
])
def test_chart_points(values, expected):
    assert chart_points(values) == expected


@pytest.mark.parametrize("name, value, text", [
    ("change_failure_rate", 0.25, "25%"), ("deployment_frequency_per_day", 1 / 3, "0.33"),
    ("lead_time_median_seconds", 65.0, "1 min 05 s"), ("time_to_restore_median_seconds", None, "-"),
])
def test_figure_text(name, value, text):
    assert figure_text(name, value) == text


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attrs, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += attrs

    def handle_data(self, data):
        self.text.append(data)


HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


def test_a_hostile_string_in_a_record_is_shown_as_text_never_as_markup():
    release = released(HOSTILE, NOW - 10, *LIVE_PATH, pushed_by=HOSTILE, steps={HOSTILE: {"started": 1.0}})
    release = release.move("rolled_back", NOW, error=HOSTILE)
    page = render(report_view([release], live=HOSTILE, previous=None, timeline=[(HOSTILE, NOW - 5)], now=NOW),
                  HOSTILE)
    parsed = _Collect()
    parsed.feed(page)
    assert "script" not in parsed.tags and "img" not in parsed.tags
    assert not any(name.startswith("on") for name, _ in parsed.attrs)
    assert HOSTILE[:40] in "".join(parsed.text)  # still readable, as text


def test_the_page_is_self_contained():
    page = render(report_view([released("v1", NOW - 100, *LIVE_PATH)], live="v1", previous=None,
                              timeline=[("v1", NOW - 40)], now=NOW), "botbalance")
    parsed = _Collect()
    parsed.feed(page)
    assert not {"script", "link", "img", "iframe", "object", "embed"} & set(parsed.tags)
    assert not [v for n, v in parsed.attrs if n in ("src", "href") and v]
    assert not re.search(r"url\(|@import|https?://(?!www\.w3\.org/2000/svg)", page)
