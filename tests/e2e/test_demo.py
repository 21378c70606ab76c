"""`make demo` is the README's first command: it runs whole as a test, so a change that breaks it fails here."""
from __future__ import annotations

from localcloud.demo import run_demo


def test_the_demo_finishes_with_every_check_passed(capsys):
    assert run_demo() == 0
    out = capsys.readouterr().out
    assert "demo finished: everything happened as told" in out and "FAIL" not in out
