"""The worker's status page (served by Faust's web server at ``/status``): models, versions and
aliases, the rollout stage and its cohorts, the agents' reported loss per version as sparklines,
the diagnoses in force and the recent decisions with their figures. Plain HTML with inline SVG,
refreshed every few seconds: nothing to install, readable in any browser."""

from __future__ import annotations

import html
import time
from typing import Any, Iterable

from streams.audit.faults import faults_from_events
from streams.worker.state import WorkerState

STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.4em}
table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:4px 10px;text-align:left;vertical-align:top}
th{background:#f4f4f4}.num{text-align:right}.ok{color:#1a7f37}.warn{color:#b35900}.small{font-size:.85em;color:#555}"""


def sparkline(values: list[float], width: int = 160, height: int = 32) -> str:
    """An inline SVG line of ``values`` (its range labelled), or a dash without enough points."""
    if len(values) < 2:
        return "-"
    lo, hi = min(values), max(values)
    span = hi - lo or 1.0
    step = width / (len(values) - 1)
    points = " ".join(f"{i * step:.1f},{height - 2 - (v - lo) / span * (height - 4):.1f}" for i, v in enumerate(values))
    return (f'<svg width="{width}" height="{height}" role="img" aria-label="loss from {lo:.3g} to {hi:.3g}">'
            f'<polyline fill="none" stroke="#4c72b0" stroke-width="1.5" points="{points}"/></svg>'
            f' <span class="small">{values[-1]:.3g} (range {lo:.3g}-{hi:.3g})</span>')


def _e(value: Any) -> str:
    return html.escape(str(value))


def _figures(figures: dict[str, float], limit: int = 6) -> str:
    items = [f"{k}={v:.4g}" for k, v in list(figures.items())[:limit]]
    return _e(", ".join(items) + (" ..." if len(figures) > limit else ""))


def _sets(event: dict) -> dict[str, float]:
    """What a decision sets (a rollout's stage and share, an A/B test), shown before its figures."""
    out: dict[str, float] = {}
    if event.get("rollout"):
        out.update(share=event["rollout"]["share"], stage=event["rollout"]["stage"])
    if event.get("ab_test"):
        out.update(event["ab_test"])
    return out


def render_status(state: WorkerState, decisions: Iterable[dict], diagnoses: Iterable[dict], app_id: str) -> str:
    rows, charts = [], []
    for mid, m in state.models.items():
        a = m.aliases
        canary = f"v{a.canary} to {a.share:g}% of agents (stage {a.stage + 1})" if a.canary else "-"
        ab = f"v{a.ab.a} vs v{a.ab.b}, {a.ab.split:g}% on v{a.ab.b}" if a.ab else "-"
        rows.append(f"<tr><td>{_e(mid)}</td><td class=num>v{m.version}</td><td>{'v%s' % a.champion if a.champion else '-'}</td>"
                    f"<td>{_e(canary)}</td><td>{'v%s' % a.challenger if a.challenger else '-'}</td><td>{_e(ab)}</td>"
                    f"<td class=num>{m.buffer.num_tasks}</td><td class=num>{m.drift.era}</td>"
                    f"<td class=num>{m.dedup.counted:,}</td></tr>")
        lines = []
        for version in sorted(m.serving.versions)[-4:]:
            stats = m.serving.versions[version]
            role = "champion" if version == a.champion else "canary" if version == a.canary else ""
            lines.append(f"<tr><td>v{version} {role}</td><td class=num>{stats.rows:,}</td><td>{sparkline(stats.sparkline())}</td>"
                         f"<td class=num>{stats.p95_latency():.3g}</td><td class=num>{stats.error_rate:.1%}</td></tr>")
        if lines:
            charts.append(f"<h2>{_e(mid)}: agents' reported loss per version</h2><table><tr><th>version</th><th>rows</th>"
                          f"<th>mean loss per second</th><th>p95 latency (ms)</th><th>error rate</th></tr>{''.join(lines)}</table>")
    faults = [f"<li class={'warn' if f.healed_ms is None else 'ok'}>{_e(f.kind)} on {_e(f.model_id or 'the worker')}"
              f"{' (' + _e(f.agent_id) + ')' if f.agent_id else ''}: found by {_e(f.found_by)} at "
              f"{time.strftime('%H:%M:%S', time.localtime(f.found_ms / 1000))}, "
              f"{'open' if f.healed_ms is None else f'healed after {f.healed_s:.1f}s by {_e(f.healed_by)}'}</li>"
              for f in faults_from_events(sorted(decisions, key=lambda e: e['timestamp_ms']))][-12:]
    found = [f"<li class=warn>{_e(d['rule'])} on {_e(d.get('model_id') or 'the worker')}: {_e(d['why'])} "
             f"(value {d['value']:.4g}); action: {_e(d['action'])}</li>" for d in diagnoses]
    events = [f"<tr><td>{time.strftime('%H:%M:%S', time.localtime(e['timestamp_ms'] / 1000))}</td><td>{_e(e['model_id'])}</td>"
              f"<td>{_e(e['event_type'])}</td><td>{_e(e.get('cause', ''))}</td><td>{_e(e['version'] or '')}</td>"
              f"<td>{_e(e['reason'][:120])}</td><td class=small>{_figures({**_sets(e), **e['figures']})}</td></tr>" for e in decisions]
    return f"""<!doctype html><html><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<title>metastream worker status</title><style>{STYLE}</style></head><body>
<h1>metastream worker status: {_e(app_id)}</h1>
<p class=small>updated {time.strftime('%Y-%m-%d %H:%M:%S')}; refreshes every 5 s</p>
<h2>Models</h2><table><tr><th>model</th><th>latest</th><th>champion</th><th>canary (rollout)</th><th>challenger</th>
<th>A/B test</th><th>buffered tasks</th><th>drift era</th><th>experiences</th></tr>{''.join(rows)}</table>
{''.join(charts)}
<h2>Diagnoses in force</h2><ul>{''.join(found) or '<li class=ok>none</li>'}</ul>
<h2>Faults found and healed (recent decisions; all of them: <code>metastream diagnose</code>)</h2>
<ul>{''.join(faults) or '<li class=ok>none</li>'}</ul>
<h2>Recent decisions</h2><table><tr><th>time</th><th>model</th><th>decision</th><th>cause</th><th>version</th><th>reason</th>
<th>figures</th></tr>{''.join(events)}</table></body></html>"""
