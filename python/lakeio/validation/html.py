"""A validation report as one self-contained HTML page: verdicts, failing values, and a plot of each
metric's history with the bounds it was held to (inline SVG and CSS; no script, no CDN, no font).

The page is built from the report and, optionally, earlier runs' metric records (what the metrics
sink keeps, :meth:`lakeio.Catalog.metrics_history`). Each plot shows the earlier runs' values, this
run's (red when its check failed), and the band its history check allowed (``max_change``,
``max_delta``, ``max_deviations`` around the reference) or the ``row_count`` bounds.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from lakeio.validation.report import CheckResult, ValidationReport

_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1f2328;max-width:1100px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d0d7de}
.verdict{display:inline-block;padding:2px 10px;border-radius:12px;font-weight:600;color:#fff}
.verdict.passed{background:#1a7f37}.verdict.failed{background:#cf222e}
.verdict.warning{background:#9a6700}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eaeef2;
vertical-align:top}th{background:#f6f8fa}tr.failed td{background:#ffebe9}tr.warning td{background:#fff8c5}
code{font-size:12px}.meta{color:#57606a}.plots{display:flex;flex-wrap:wrap;gap:16px}
figure{margin:0;border:1px solid #d0d7de;border-radius:6px;padding:8px}figcaption{font-weight:600;margin-bottom:4px}
svg text{font:11px system-ui,sans-serif;fill:#57606a}
"""
_WIDTH, _HEIGHT, _PAD = 320, 170, 36


def render(report: ValidationReport, history: Iterable[Mapping[str, Any]] | None = None) -> str:
    """The report as an HTML page; ``history``: earlier runs' metric records (sink records)."""
    state = "passed" if report.passed else "failed"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>lakeio validation: {_e(report.dataset)} [{_e(report.env)}]</title>",
        f"<style>{_STYLE}</style></head>",
        f'<body class="{state}">',
        f'<h1>Dataset {_e(report.dataset)} <span class="verdict {state}" id="verdict">{state.upper()}</span></h1>',
        f'<p class="meta">environment <b>{_e(report.env)}</b> · {_e(report.operation)} · backend '
        f'{_e(report.backend)} · run <code>{_e(report.run_id)}</code> · {report.rows:,} rows · '
        f'{len(report.errors)} errors, {len(report.warnings)} warnings, {len(report.skipped)} skipped · '
        f'contract <code>{_e(report.contract)}</code></p>',
        _checks_table(report.results),
    ]
    if report.skipped:
        rows = "".join(f"<tr><td>{_e(s.check)}</td><td>{_e(s.column or 'table')}</td><td>{_e(s.reason)}</td></tr>"
                       for s in report.skipped)
        parts.append(f'<h2>Skipped</h2><table id="skipped"><tr><th>check</th><th>column</th><th>why</th></tr>'
                     f"{rows}</table>")
    parts.append(_metrics_table(report))
    plots = _plots(report, list(history or ()))
    parts.append(f'<h2>Metric history</h2><div class="plots" id="plots">{"".join(plots)}</div>' if plots else "")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _deequ_said(result: CheckResult) -> str:
    """What Deequ's own constraint said, under lakeio's message, when the Deequ backend ran."""
    return f'<br><small class="deequ">deequ: {_e(result.deequ)}</small>' if result.deequ else ""


def _checks_table(results: tuple[CheckResult, ...]) -> str:
    rows = []
    ordered = sorted(results, key=lambda r: (r.passed, r.severity != "error"))
    for r in ordered:
        state = "passed" if r.passed else ("failed" if r.severity == "error" else "warning")
        rows.append(f'<tr class="check {state}" data-check="{_e(r.check)}" data-column="{_e(r.column or "")}">'
                    f'<td><span class="verdict {state}">{state}</span></td><td>{_e(r.check)}</td>'
                    f"<td>{_e(r.column or 'table')}</td><td>{_e(r.severity)}</td>"
                    f"<td><code>{_e(_json(r.observed))}</code></td><td><code>{_e(_json(r.threshold))}</code></td>"
                    f"<td>{_e(r.message)}{_deequ_said(r)}</td></tr>")
    return ('<h2>Checks</h2><table id="checks"><tr><th>verdict</th><th>check</th><th>column</th><th>severity</th>'
            "<th>observed</th><th>threshold</th><th>message</th></tr>" + "".join(rows) + "</table>")


def _metrics_table(report: ValidationReport) -> str:
    rows = "".join(f"<tr><td>{_e(m.column or 'table')}</td><td>{_e(m.metric)}</td><td>{_e(m.label or '')}</td>"
                   f"<td><code>{_e(_json(m.value))}</code></td></tr>" for m in report.metrics)
    return ('<h2>Metrics</h2><table id="metrics"><tr><th>column</th><th>metric</th><th>label</th><th>value</th></tr>'
            f"{rows}</table>")


def _plots(report: ValidationReport, history: list[Mapping[str, Any]]) -> list[str]:
    earlier: dict[tuple[str | None, str], list[float]] = {}
    for row in sorted(history, key=lambda r: str(r.get("time"))):
        value = row.get("value")
        if row.get("run_id") == report.run_id or row.get("label") is not None or not _finite(value):
            continue
        earlier.setdefault((row.get("column"), str(row.get("metric"))), []).append(float(value))  # type: ignore[arg-type]
    checks = {(r.column, r.check): r for r in report.results}
    plots = []
    for metric in report.metrics:
        if metric.label is not None or not _finite(metric.value):
            continue
        key = (metric.column, metric.metric)
        result = checks.get(key) if metric.metric != "row_count" else checks.get((None, "row_count"))
        plots.append(_plot(metric.column, metric.metric, earlier.get(key, []), float(metric.value), result))
    return plots


def _band(result: CheckResult | None) -> tuple[float | None, float | None]:
    """The (low, high) this run's value was held to, from its check's threshold and observation."""
    if result is None:
        return None, None
    threshold, observed = result.threshold, result.observed
    if isinstance(threshold, str) and ".." in threshold:  # row_count bounds, "min..max"
        low, _, high = threshold.partition("..")
        return float(low), (None if high == "any" else float(high))
    if not isinstance(threshold, dict) or not isinstance(observed, dict) or "reference" not in observed:
        return None, None
    reference = float(observed["reference"])
    widths = []
    if threshold.get("max_change") is not None:
        widths.append(threshold["max_change"] * abs(reference))
    if threshold.get("max_delta") is not None:
        widths.append(threshold["max_delta"])
    if threshold.get("max_deviations") is not None and observed.get("stddev") is not None:
        widths.append(threshold["max_deviations"] * observed["stddev"])
    if not widths:
        return None, None
    width = min(widths)  # every bound given applies: the narrowest decides
    return reference - width, reference + width


def _plot(column: str | None, metric: str, earlier: list[float], current: float, result: CheckResult | None) -> str:
    low, high = _band(result)
    values = [*earlier, current]
    span = [v for v in (*values, low, high) if v is not None]
    bottom, top = min(span), max(span)
    if top == bottom:
        bottom, top = bottom - 1, top + 1
    margin = (top - bottom) * 0.08
    bottom, top = bottom - margin, top + margin
    inner_w, inner_h = _WIDTH - 2 * _PAD, _HEIGHT - 2 * _PAD

    def x(i: int) -> float:
        return _PAD + (inner_w * i / (len(values) - 1) if len(values) > 1 else inner_w / 2)

    def y(v: float) -> float:
        return _PAD + inner_h * (top - v) / (top - bottom)

    failed = result is not None and not result.passed
    name = f"{column or 'table'} · {metric}"
    svg = [f'<svg class="metric-plot" data-column="{_e(column or "")}" data-metric="{_e(metric)}" '
           f'width="{_WIDTH}" height="{_HEIGHT}" viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" '
           f'aria-label="{_e(name)} over {len(values)} runs">']
    svg.append(f'<rect x="{_PAD}" y="{_PAD}" width="{inner_w}" height="{inner_h}" fill="#fff" stroke="#d0d7de"/>')
    if low is not None or high is not None:
        band_top, band_bottom = y(high if high is not None else top), y(low if low is not None else bottom)
        svg.append(f'<rect class="bounds" x="{_PAD}" y="{band_top:.1f}" width="{inner_w}" '
                   f'height="{max(band_bottom - band_top, 1):.1f}" fill="#1a7f37" fill-opacity="0.12" '
                   f'stroke="#1a7f37" stroke-dasharray="4 3" stroke-opacity="0.6"/>')
    if len(values) > 1:
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
        svg.append(f'<polyline points="{points}" fill="none" stroke="#0969da" stroke-width="1.5"/>')
    for i, v in enumerate(values):
        last = i == len(values) - 1
        colour = ("#cf222e" if failed else "#1a7f37") if last else "#0969da"
        svg.append(f'<circle class="point{" current" if last else ""}{" failed" if last and failed else ""}" '
                   f'cx="{x(i):.1f}" cy="{y(v):.1f}" r="{4 if last else 3}" fill="{colour}">'
                   f"<title>{'this run' if last else f'run {i + 1}'}: {v:.6g}</title></circle>")
    svg.append(f'<text x="{_PAD - 4}" y="{_PAD + 4}" text-anchor="end">{_tick(top)}</text>')
    svg.append(f'<text x="{_PAD - 4}" y="{_PAD + inner_h}" text-anchor="end">{_tick(bottom)}</text>')
    svg.append(f'<text x="{_PAD}" y="{_HEIGHT - 12}">{len(earlier)} earlier run(s), then this one: '
               f"{current:.6g}</text></svg>")
    return f'<figure><figcaption>{_e(name)}</figcaption>{"".join(svg)}</figure>'


def _tick(value: float) -> str:
    return f"{value:.4g}"


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _json(value: Any) -> str:
    return json.dumps(value, default=str)


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)
