"""The release report as one self-contained HTML page: inline CSS and SVG, no script, no font, no link out.

`render(view, project)` draws what `shared.core.report.report_view` decided. Every text from a record was cut there
and is escaped here (`html.escape`, quotes included, in text and in attributes alike). The figures a reader (or the
browser test) checks are carried as `data-*` attributes beside the words: `data-seconds` on a release, a phase and a
step, `data-value` on a chart's point and a figure, `data-field` on the current unit.
"""
from __future__ import annotations

import html
from datetime import datetime, timezone
from typing import Sequence

from shared.core.report import CANARY, ReleaseRow, ReportView
from shared.core.wording import duration
from shared.dora import DoraPoint

CHART_WIDTH, CHART_HEIGHT, CHART_PAD = 320, 120, 24
BAR_WIDTH, BAR_HEIGHT = 480, 14
STATE_COLOURS = {
    "building": "#8fa8c8", "migrating": "#c8a06e", "deploying": "#7aa6a1", "publishing": "#a58fc8",
    "verifying": "#c8c46e", "live": "#5fa35f", "failed": "#c85f5f", "rolled_back": "#d9822b", "superseded": "#999999",
}
FIGURES = (
    ("deployment_frequency_per_day", "Deployment frequency", "a day"),
    ("lead_time_median_seconds", "Lead time (median)", "push to live"),
    ("change_failure_rate", "Change failure rate", "of changes that reached users"),
    ("time_to_restore_median_seconds", "Time to restore (median)", "failure to restored"),
)
_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}
.muted{color:#666}.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{border:1px solid #ddd;border-radius:6px;padding:8px 12px}
.card .value{font-size:20px;font-weight:600}
table{border-collapse:collapse}td,th{padding:4px 8px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px}dt{color:#666}dd{margin:0;font-family:monospace}
ul.steps{margin:4px 0 0;padding-left:16px;font-size:12px}li.canary{color:#7a4fb0}
.serving{font-weight:600}.error{color:#a33;font-size:12px}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _seconds(value: float | None) -> str:
    """A `data-seconds` value: seconds to the millisecond, or empty when unknown."""
    return "" if value is None else f"{value:.3f}"


def figure_text(name: str, value: float | int | None) -> str:
    """A DORA figure as people read it."""
    if value is None:
        return "-"
    if name == "change_failure_rate":
        return f"{value:.0%}"
    if name == "deployment_frequency_per_day":
        return f"{value:.2f}"
    return duration(float(value))


def chart_points(values: Sequence[float | None], width: float = CHART_WIDTH, height: float = CHART_HEIGHT,
                 pad: float = CHART_PAD) -> list[tuple[float, float] | None]:
    """Where each value sits in the chart: evenly spaced across, 0 at the bottom and the largest value (or 1 when
    all are 0) at the top; None where the figure is unknown (the line breaks there)."""
    known = [v for v in values if v is not None]
    top = max(known) if known and max(known) > 0 else 1.0
    count = len(values)
    out: list[tuple[float, float] | None] = []
    for index, value in enumerate(values):
        if value is None:
            out.append(None)
            continue
        x = pad + (width - 2 * pad) * (index / (count - 1) if count > 1 else 0.5)
        y = height - pad - (height - 2 * pad) * (value / top)
        out.append((round(x, 1), round(y, 1)))
    return out


def _chart(name: str, series: Sequence[DoraPoint]) -> str:
    values = [getattr(point.figures, name) for point in series]
    points = chart_points(values)
    lines: list[str] = []
    run: list[tuple[float, float]] = []
    for point in [*points, None]:
        if point is None:
            if len(run) > 1:
                lines.append(f'<polyline fill="none" stroke="#3b6ea5" stroke-width="2" '
                             f'points="{" ".join(f"{x},{y}" for x, y in run)}"/>')
            run = []
        else:
            run.append(point)
    dots = []
    for point, at, value in zip(points, (p.at for p in series), values):
        if point is None:
            continue
        dots.append(f'<circle cx="{point[0]}" cy="{point[1]}" r="3" fill="#3b6ea5" data-at="{at:.0f}" '
                    f'data-value="{value}"><title>{_e(_when(at)[:10])}: {_e(figure_text(name, value))}</title></circle>')
    base = CHART_HEIGHT - CHART_PAD
    axis = (f'<line x1="{CHART_PAD}" y1="{base}" x2="{CHART_WIDTH - CHART_PAD}" y2="{base}" stroke="#bbb"/>'
            f'<text x="{CHART_PAD}" y="{CHART_HEIGHT - 6}" font-size="10" fill="#666">{_e(_when(series[0].at)[:10])}</text>'
            f'<text x="{CHART_WIDTH - CHART_PAD}" y="{CHART_HEIGHT - 6}" font-size="10" fill="#666" text-anchor="end">'
            f'{_e(_when(series[-1].at)[:10])}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{CHART_WIDTH}" height="{CHART_HEIGHT}" '
            f'viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" role="img" data-chart="{name}">{axis}{"".join(lines)}'
            f'{"".join(dots)}</svg>')


def _figures(view: ReportView) -> str:
    cards = []
    for name, title, hint in FIGURES:
        value = getattr(view.figures, name)
        cards.append(f'<div class="card" data-figure="{name}" data-value="{"" if value is None else value}">'
                     f'<div class="muted">{_e(title)}</div><div class="value">{_e(figure_text(name, value))}</div>'
                     f'<div class="muted">{_e(hint)}</div>{_chart(name, view.series)}</div>')
    return (f'<section id="dora"><h2>DORA, over the last {view.window_days:g} days</h2>'
            f'<p class="muted">{view.figures.deployments} went live in the window; each chart point is the '
            f'figure over the {view.window_days:g} days that ended that day.</p>'
            f'<div class="cards">{"".join(cards)}</div></section>')


def _bar(release: ReleaseRow, scale: float) -> str:
    rects = []
    for phase in release.phases:
        if phase.seconds is None:
            continue
        x = (phase.began - release.began) * scale
        w = max(1.0, phase.seconds * scale)
        rects.append(f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="{BAR_HEIGHT}" '
                     f'fill="{STATE_COLOURS.get(phase.state, "#ccc")}" data-phase="{_e(phase.state)}" '
                     f'data-seconds="{_seconds(phase.seconds)}"><title>{_e(phase.state)}: '
                     f'{_e(duration(phase.seconds))}</title></rect>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{BAR_WIDTH}" height="{BAR_HEIGHT}" '
            f'viewBox="0 0 {BAR_WIDTH} {BAR_HEIGHT}">{"".join(rects)}</svg>')


def _steps(release: ReleaseRow) -> str:
    items = []
    for step in release.steps:
        took = duration(step.seconds) if step.seconds is not None else "not finished"
        items.append(f'<li class="{_e(step.kind)}" data-step="{_e(step.name)}" data-kind="{_e(step.kind)}" '
                     f'data-seconds="{_seconds(step.seconds)}">{_e(_step_title(step.name, step.kind))}: {_e(took)}</li>')
    return f'<ul class="steps">{"".join(items)}</ul>' if items else ""


def _step_title(name: str, kind: str) -> str:
    return f"canary {name}" if kind == CANARY and not name.startswith("canary") else name.replace("_", " ")


def _releases(view: ReportView) -> str:
    longest = max((r.seconds for r in view.rows), default=0.0)
    scale = BAR_WIDTH / longest if longest > 0 else 0.0
    rows = []
    for release in reversed(view.rows):  # newest on top
        attempt = f" (attempt {release.attempt})" if release.attempt > 1 else ""
        error = f'<div class="error">{_e(release.error)}</div>' if release.error else ""
        rows.append(
            f'<tr data-tag="{_e(release.tag)}" data-state="{_e(release.state)}" data-seconds="{_seconds(release.seconds)}"'
            f' data-canary-steps="{len(release.canary_steps)}"{" data-serving" if release.serving else ""}>'
            f'<td class="{"serving" if release.serving else ""}">{_e(release.tag)}{_e(attempt)}'
            f'{" (serving)" if release.serving else ""}</td><td>{_e(release.state)}</td>'
            f'<td>{_e(duration(release.seconds))}</td><td>{_e(release.pushed_by)}<div class="muted">'
            f'{_e(release.commit[:12])}</div></td><td>{_e(_when(release.began))}</td>'
            f'<td>{_bar(release, scale)}{_steps(release)}{error}</td></tr>')
    body = "".join(rows) or '<tr><td colspan="6" class="muted">No release in the window.</td></tr>'
    legend = " ".join(f'<span style="color:{colour}">&#9632;</span> {_e(state)}' for state, colour in STATE_COLOURS.items())
    return (f'<section id="releases"><h2>Releases ({len(view.rows)})</h2><p class="muted">{legend}</p>'
            f'<table><thead><tr><th>tag</th><th>state</th><th>took</th><th>pushed by</th><th>pushed</th>'
            f'<th>phases and steps</th></tr></thead><tbody>{body}</tbody></table></section>')


def _rollbacks(view: ReportView) -> str:
    items = [f'<li data-rollback="{_e(m.tag)}" data-to="{_e(m.to or "")}">{_e(_when(m.at))}: {_e(m.tag)} rolled back'
             f'{" to " + _e(m.to) if m.to else ""}: {_e(m.reason)}</li>' for m in view.rollbacks]
    return (f'<section id="rollbacks"><h2>Rollbacks ({len(items)})</h2>'
            f'{"<ul>" + "".join(items) + "</ul>" if items else "<p class=muted>None in the window.</p>"}</section>')


def _unit(view: ReportView) -> str:
    unit = view.unit
    fields = (("live", unit.live or "(nothing deployed by tagship yet)"), ("previous", unit.previous or "-"),
              ("since", _when(unit.since)), ("api", unit.api or "-"), ("worker", unit.worker or "-"),
              ("image", unit.image or "-"))
    rows = "".join(f'<dt>{_e(name)}</dt><dd data-field="{name}">{_e(value)}</dd>' for name, value in fields)
    return f'<section id="unit"><h2>Serving now</h2><dl>{rows}</dl></section>'


def render(view: ReportView, project: str) -> str:
    """The whole page."""
    left_out = (f'<p class="error" id="left-out">{view.left_out} release record(s) could not be read and are left '
                f'out: <code>python main.py state check</code> names them.</p>' if view.left_out else "")
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>tagship releases: {_e(project)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_STYLE}</style></head><body>'
            f'<h1>tagship releases: {_e(project)}</h1><p class="muted" id="generated" data-at="{view.generated_at:.0f}">'
            f'generated {_e(_when(view.generated_at))}</p>{left_out}{_unit(view)}{_figures(view)}{_rollbacks(view)}'
            f'{_releases(view)}</body></html>\n')
