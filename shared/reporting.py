"""`python main.py report`'s shell: read the records, decide what to draw (`shared.core.report`), render it
(`shared.report_page`), write the page. Bad input writes nothing."""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from shared.core.report import report_view
from shared.errors import CorruptRecord
from shared.report_page import render

MAX_POINTS = 366


def write_report(config: Any, store: Any, out_path: str, *, days: float, points: int, every_days: float) -> int:
    """Writes the page to `out_path`; returns the exit status (2 for bad input, nothing written)."""
    if not days > 0 or not 1 <= points <= MAX_POINTS or not every_days > 0:
        print(f"tagship: report: expected --days > 0, --points from 1 to {MAX_POINTS} and --every-days > 0, found "
              f"{days}, {points}, {every_days}", file=sys.stderr)
        return 2
    out = Path(out_path)
    if not out.parent.is_dir():
        print(f"tagship: report: no directory {str(out.parent)!r} to write {out.name!r} in", file=sys.stderr)
        return 2
    releases, corrupt = store.releases_and_corrupt()
    try:
        pointer = store.pointer()
        live, previous, timeline = pointer.live, pointer.previous, pointer.timeline
    except CorruptRecord as error:  # what serves is never guessed: the page says nothing of it
        print(f"tagship: report: {error}; the page shows no current unit", file=sys.stderr)
        live, previous, timeline = None, None, ()
    view = report_view(releases, live=live, previous=previous, timeline=timeline, now=time.time(),
                       window_days=days, points=points, every_days=every_days, left_out=len(corrupt))
    out.write_text(render(view, config.project.id), encoding="utf-8")
    print(f"wrote {out} ({len(view.rows)} releases, {len(view.rollbacks)} rollbacks)")
    return 0
