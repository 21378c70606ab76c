"""`python main.py report`'s shell against the recording records fake: broken records are named, never drawn."""
from __future__ import annotations

from shared.config import load
from shared.release import new_release
from shared.reporting import write_report
from shared.state import StateStore
from tests.service.fakes import FakeRecords


def store_with(records: FakeRecords) -> StateStore:
    release = new_release("v1.0.0", "c" * 40, "hana", "d", 1_000.0).move("migrating", 1_010.0)
    records.create("releases/v1.0.0.json", release.to_dict())
    return StateStore(records)


def test_a_corrupt_pointer_leaves_the_unit_empty_and_says_so(tmp_path, capsys):
    records = FakeRecords()
    records.create("pointer.json", {"live": 5})
    page = tmp_path / "r.html"
    assert write_report(load(), store_with(records), str(page), days=36500, points=3, every_days=7) == 0
    html = page.read_text()
    assert 'data-field="live">(nothing deployed by tagship yet)' in html and 'data-tag="v1.0.0"' in html
    assert "pointer.json: corrupt record" in capsys.readouterr().err


def test_a_corrupt_release_is_left_out_and_counted_on_the_page(tmp_path):
    records = FakeRecords()
    records.create("releases/v2.0.0.json", {"tag": "v2.0.0", "history": "live"})
    page = tmp_path / "r.html"
    assert write_report(load(), store_with(records), str(page), days=36500, points=3, every_days=7) == 0
    html = page.read_text()
    assert 'data-tag="v2.0.0"' not in html and "1 release record(s) could not be read" in html


def test_bad_arguments_write_nothing_and_read_nothing(tmp_path, capsys):
    records = FakeRecords()
    page = tmp_path / "r.html"
    for days, points, every in ((0, 3, 7), (30, 0, 7), (30, 367, 7), (30, 3, -1), (float("nan"), 3, 7)):
        assert write_report(load(), StateStore(records), str(page), days=days, points=points, every_days=every) == 2
    assert not page.exists() and "expected --days > 0" in capsys.readouterr().err
