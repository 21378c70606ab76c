"""`python main.py report` on the local cloud: the records a real deploy, rollback and failure left, the page the
command line writes from them through the real GCS client, and that page as a real headless Chromium builds it."""
from __future__ import annotations

import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from localcloud.cloud import LocalCloud
from shared.dora import dora
from shared.release import Release
from tests import browser
from tests.e2e.conftest import LATENCY, wait_ended

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def shipped():
    """v1.0.0 and v1.1.0 go live, v1.1.0 is rolled back by a person, v1.2.0's migration fails."""
    with LocalCloud(latency=dict(LATENCY)) as cloud:
        for tag in ("v1.0.0", "v1.1.0"):
            cloud.push_tag(tag, pusher="hana")
            assert wait_ended(cloud, tag)["state"] == "live"
        cloud.publish(cloud.config.topics.rollback, {"to": "previous", "from": "v1.1.0", "reason": "checkout <b>broken</b>",
                                                     "requested_by": "dana"})
        cloud.wait_for(lambda: (cloud.release("v1.1.0") or {}).get("state") == "rolled_back", 20, what="the rollback")
        cloud.wait_for(lambda: cloud.live_tag() == "v1.0.0", 20, what="the pointer back on v1.0.0")
        cloud.push_tag("v1.2.0", migration="fail")
        assert wait_ended(cloud, "v1.2.0")["state"] == "failed"
        yield cloud


def cli(cloud, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "main.py"), "--config", cloud.config_path, *args],
                          capture_output=True, text=True, timeout=60, env=dict(os.environ))


class _Elements(HTMLParser):
    """Every element with a data-* attribute: (tag, attributes, its text)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str], list[str]]] = []
        self._open: list[list[str]] = []

    def handle_starttag(self, tag, attrs):
        attributes = {k: v or "" for k, v in attrs}
        text: list[str] = []
        if any(k.startswith("data-") for k in attributes):
            self.found.append((tag, attributes, text))
        if tag not in ("circle", "rect", "line", "polyline", "meta", "br"):
            self._open.append(text)

    def handle_endtag(self, tag):
        if tag not in ("circle", "rect", "line", "polyline", "meta", "br") and self._open:
            self._open.pop()

    def handle_data(self, data):
        for text in self._open:
            text.append(data)

    def having(self, key):
        return [(attrs, "".join(text)) for _, attrs, text in self.found if key in attrs]


def test_the_report_renders_in_a_real_browser_and_its_numbers_are_the_records(shipped, tmp_path):
    cloud = shipped
    browser.browser()  # skipped here, with the reason, when the machine has no Chromium
    page = tmp_path / "report.html"
    done = cli(cloud, "report", "--out", str(page))
    assert done.returncode == 0, done.stderr
    rendered = browser.render(page)
    assert rendered.screenshot_size == browser.WINDOW
    dom = _Elements()
    dom.feed(rendered.dom)
    records = {tag: Release.from_dict(cloud.release(tag)) for tag in ("v1.0.0", "v1.1.0", "v1.2.0")}

    rows = {attrs["data-tag"]: attrs for attrs, _ in dom.having("data-tag")}
    assert set(rows) == set(records)
    for tag, record in records.items():
        assert rows[tag]["data-state"] == record.state
        assert float(rows[tag]["data-seconds"]) == pytest.approx(record.history[-1][1] - record.created_at, abs=1e-3)
    steps = {(attrs["data-step"]): float(attrs["data-seconds"]) for attrs, _ in dom.having("data-step")
             if attrs["data-seconds"]}
    for name, edges in records["v1.0.0"].steps.items():
        if "started" in edges and "finished" in edges:
            assert steps[name] == pytest.approx(edges["finished"] - edges["started"], abs=1e-3)

    unit = {attrs["data-field"]: text for attrs, text in dom.having("data-field")}
    live = records["v1.0.0"]
    pointer = cloud.store().pointer()
    assert (unit["live"], unit["previous"]) == (pointer.live, pointer.previous or "-") == ("v1.0.0", "-")
    assert (unit["api"], unit["worker"], unit["image"]) == (live.revisions["api"], live.revisions["worker"], live.image)

    (rollback,) = [(attrs, text) for attrs, text in dom.having("data-rollback")]
    assert (rollback[0]["data-rollback"], rollback[0]["data-to"]) == ("v1.1.0", "v1.0.0")
    assert "checkout <b>broken</b>" in rollback[1]  # shown as text: the browser built no <b> from it
    assert "<b>broken" not in rendered.dom

    figures = dora(list(records.values()), now=live.created_at + 60, window_days=30)
    cards = {attrs["data-figure"]: attrs["data-value"] for attrs, _ in dom.having("data-figure")}
    assert float(cards["deployment_frequency_per_day"]) == pytest.approx(figures.deployment_frequency_per_day)
    assert float(cards["lead_time_median_seconds"]) == pytest.approx(figures.lead_time_median_seconds)
    assert float(cards["change_failure_rate"]) == pytest.approx(figures.change_failure_rate) == 0.5
    assert float(cards["time_to_restore_median_seconds"]) == pytest.approx(figures.time_to_restore_median_seconds)
    last_points = {attrs["data-chart"] for attrs, _ in dom.having("data-chart")}
    assert last_points == set(cards)


def test_a_report_asked_for_a_window_that_is_not_positive_is_refused_and_writes_nothing(shipped, tmp_path):
    page = tmp_path / "report.html"
    done = cli(shipped, "report", "--out", str(page), "--days", "0")
    assert done.returncode == 2 and "--days > 0" in done.stderr
    assert not page.exists()


def test_a_report_into_a_directory_that_does_not_exist_is_refused_clearly(shipped, tmp_path):
    done = cli(shipped, "report", "--out", str(tmp_path / "nowhere" / "report.html"))
    assert done.returncode == 2 and "no directory" in done.stderr
