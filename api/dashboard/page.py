"""The dashboard as one self-contained HTML page (inline CSS and SVG; no script, nothing fetched).

Two renderings of the same view-model: ``standalone=False`` for ``GET /dashboard`` (the feature and
version selectors are links back to the route: ``?feature=credit_score``) and ``standalone=True``
for the exported file (every feature's histogram is in the page; links to ``#hist-<feature>``
switch between them with CSS ``:target``, so it works offline, from a mail attachment or a
file share). The only link to another host is the MLflow run (``LENDGUARD_MLFLOW_UI_URL``).

Each panel carries ``data-panel`` (ops, drift, output) and ``data-rows`` (rows behind it; 0: no data
yet), stable hooks for the browser test and for anyone scraping the page.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

from api.dashboard import charts
from api.dashboard.charts import CRITICAL, WARN, Interval, Limit, Series
from api.dashboard.model import DEPLOYMENT, LATEST, Dashboard, Row, Rows

TRAINING = "#9e9e9e"
PRODUCTION = "#1f5fa8"
Formatter = Callable[[Any], str]

_STYLE = """
:root { color-scheme: light; }
body { font-family: system-ui, sans-serif; margin: 0; color: #222; background: #f6f7f9; }
header, section, footer { max-width: 1360px; margin: 0 auto; padding: .5rem 1.25rem; }
header { background: #fff; border-bottom: 1px solid #ddd; max-width: none; }
h1 { font-size: 1.4rem; margin: .4rem 0; } h2 { font-size: 1.15rem; margin: .8rem 0 .4rem; }
h3 { font-size: 1rem; margin: .8rem 0 .3rem; }
.cards { display: flex; flex-wrap: wrap; gap: .75rem; margin: .5rem 0; }
.card { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: .5rem .8rem; min-width: 14rem; }
.card b { display: block; font-size: .8rem; color: #555; text-transform: uppercase; letter-spacing: .03em; }
.ok { color: #2e7d32; } .warn { color: #b36b00; } .critical { color: #c62828; font-weight: bold; }
.panel { background: #fff; border: 1px solid #ddd; border-radius: 6px; margin: 1rem auto; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 1rem; }
.chart { max-width: 100%; height: auto; background: #fff; }
table { border-collapse: collapse; font-size: .85rem; margin: .3rem 0 .8rem; }
th, td { border-bottom: 1px solid #eee; padding: .2rem .5rem; text-align: left; vertical-align: top; }
th.num, td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.details { max-width: 36rem; overflow-wrap: anywhere; font-size: .8rem; color: #444; }
.hists figure { max-width: 820px; margin: .5rem 0; }
th { background: #fafafa; }
.nodata { color: #666; font-style: italic; }
.muted { color: #666; font-size: .85rem; }
nav.features a, nav.versions a { display: inline-block; margin: .1rem .35rem .1rem 0; padding: .1rem .4rem;
  border: 1px solid #ccd; border-radius: 4px; text-decoration: none; font-size: .85rem; }
nav.features a.selected, nav.versions a.selected { background: #1f5fa8; color: #fff; }
.hist { display: none; }
.hist.selected { display: block; }
.hists:has(.hist:target) .hist.selected { display: none; }
.hists .hist:target { display: block; }
details > summary { cursor: pointer; color: #1f5fa8; margin: .3rem 0; }
code { font-family: ui-monospace, monospace; font-size: .85rem; }
"""


def render_page(dashboard: Dashboard, *, standalone: bool = False) -> str:
    """The whole page for ``dashboard``; ``standalone`` for the exported file (see the module doc)."""
    d = dashboard
    title = f"lendguard monitoring — model {d.version or 'none'}"
    parts = [
        "<!DOCTYPE html>",
        "<html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<meta name='generator' content='lendguard dashboard'><title>{escape(title)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        _header(d, title, standalone=standalone),
        _alerts(d),
        _ops(d),
        _drift(d, standalone=standalone),
        _output(d),
        _approval(d),
        _footer(d, standalone=standalone),
        "</body></html>",
    ]
    return "\n".join(parts)


def render_missing(reason: str) -> str:
    """The page before the first build: what is missing and the command that fixes it."""
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>lendguard monitoring: no data yet</title>"
        f"<style>{_STYLE}</style></head><body><header><h1>lendguard monitoring</h1></header>"
        "<section class='panel' data-panel='missing' data-rows='0'><h2>No published warehouse yet</h2>"
        f"<p>{escape(reason)}</p><p>Run <code>lendguard build</code> (or <code>lendguard monitor</code>) to build "
        "the warehouse and publish the read-only snapshot this page reads, then reload.</p></section></body></html>"
    )


def _window_nav(d: Dashboard, *, standalone: bool) -> str:
    if standalone:
        return ""
    links = []
    for window, text in ((LATEST, "latest count window"), (DEPLOYMENT, "whole deployment")):
        query = {"window": window, **({"version": d.version} if d.version else {})}
        selected = " class='selected'" if window == d.window else ""
        links.append(f"<a href='?{escape(urlencode(query), quote=True)}'{selected}>{text}</a>")
    return f"<nav class='versions' aria-label='window'>window: {' '.join(links)}</nav>"


# ----- header, alerts -----------------------------------------------------------------------------
def _header(d: Dashboard, title: str, *, standalone: bool) -> str:
    model = d.model
    if model.version is None:
        model_card = f"<span class='warn'>no deployed version</span><br><span class='muted'>" \
                     f"{escape(model.registry_error or '')}</span>"
    else:
        run_id = escape((model.run_id or "")[:12])
        run = (f"<a href='{escape(model.mlflow_url, quote=True)}' rel='noopener'>MLflow run {run_id}</a>"
               if model.mlflow_url else "MLflow run unknown")
        approval = d.model.approvals.rows[0] if d.model.approvals else None
        approved = (f"{escape(str(approval['decision']))} by {escape(str(approval['decided_by']))}"
                    if approval else "no approval record in the snapshot")
        model_card = (f"<span data-model-version='{escape(model.version, quote=True)}'>version "
                      f"<strong>{escape(model.version)}</strong> ({escape(model.alias)})</span><br>{run} · "
                      f"<a href='#approval'>approval record</a><br><span class='muted'>{approved}</span>")
    failover = d.failover
    if failover.active:
        fail_card = (f"<span class='critical' data-failover='active'>ACTIVE: {escape(failover.fallback)}</span><br>"
                     f"<span class='muted'>since {escape(failover.set_at or '?')} by {escape(failover.set_by or '?')}: "
                     f"{escape(failover.reason or '')}</span>")
    elif failover.cleared_at:
        fail_card = (f"<span class='ok' data-failover='off'>off</span><br><span class='muted'>cleared by "
                     f"{escape(failover.cleared_by or '?')} at {escape(failover.cleared_at)}</span>")
    else:
        fail_card = "<span class='ok' data-failover='off'>off</span><br><span class='muted'>never set</span>"
    critical = sum(1 for a in d.alerts.rows if a.get("severity") == "critical")
    shown = len(d.alerts)
    alert_class = "critical" if critical else ("warn" if d.alert_count else "ok")
    more = f" (latest {shown} below)" if d.alert_count > shown else ""
    alert_card = (f"<span class='{alert_class}'>{d.alert_count} open</span>{more}<br>"
                  f"<span class='muted'>{critical} critical among those shown · <a href='#alerts'>list</a></span>"
                  if not d.alerts.missing or d.alerts.rows else
                  f"<span class='muted'>{escape(d.alerts.missing or '')}</span>")
    published = _when(d.snapshot_published_at)
    versions = ""
    if len(d.versions) > 1 and not standalone:
        links = " ".join(
            f"<a href='?{escape(urlencode({'version': v, 'window': d.window}), quote=True)}'"
            f"{' class=selected' if v == d.version else ''}>{escape(v)}</a>" for v in d.versions)
        versions = f"<nav class='versions' aria-label='model version'>panels for version: {links}</nav>"
    return (
        f"<header><h1>{escape(title)}</h1>"
        f"<div class='muted'>snapshot published {published} · page generated {_when(d.generated_at)} · drift and "
        f"output panels: version {escape(d.version or 'none')}</div>{versions}{_window_nav(d, standalone=standalone)}"
        "<div class='cards'>"
        f"<div class='card' data-card='model'><b>Deployed model</b>{model_card}</div>"
        f"<div class='card' data-card='failover'><b>Failover</b>{fail_card}</div>"
        f"<div class='card' data-card='alerts'><b>Alerts</b>{alert_card}</div>"
        "</div></header>"
    )


def _alerts(d: Dashboard) -> str:
    body = _table(d.alerts, [
        ("severity", "severity", _severity), ("check_name", "check", str), ("subject", "subject", str),
        ("model_version", "version", str), ("window_kind", "window", str), ("window_start", "from", _time),
        ("value", "value", _num), ("threshold", "limit", _num), ("details", "details", _details),
    ], empty="no open alerts")
    return (f"<section id='alerts' class='panel' data-panel='alerts' data-rows='{len(d.alerts)}'>"
            f"<h2>Open alerts</h2>{body}</section>")


# ----- ops ----------------------------------------------------------------------------------------
def _ops(d: Dashboard) -> str:
    hourly = d.ops_hourly
    if hourly:
        times = [_utc(t) for t in hourly.column("hour_start")]
        volume = charts.time_series(
            "Requests, errors and positive predictions per hour", times,
            [Series("requests", _floats(hourly.column("requests")), PRODUCTION),
             Series("errors", _floats(hourly.column("errors")), CRITICAL),
             Series("positive predictions", _floats(hourly.column("positive_predictions")), WARN, "5 3")],
            y_label="per hour")
        limits = [Limit("p99 limit", d.thresholds.latency_p99_ms)] if d.thresholds.latency_p99_ms else []
        latency = charts.time_series(
            "Latency per hour (ms)", times,
            [Series("p50", _floats(hourly.column("latency_p50_ms")), "#7aa6d6"),
             Series("p95", _floats(hourly.column("latency_p95_ms")), PRODUCTION),
             Series("p99", _floats(hourly.column("latency_p99_ms")), "#0d2f5a", "4 2")],
            y_label="milliseconds", limits=limits)
    else:
        why = hourly.missing or "no requests logged yet"
        volume = charts.empty("Requests, errors and positive predictions per hour", why)
        latency = charts.empty("Latency per hour (ms)", why)
    deployment = _table(d.ops_deployment, [
        ("model_version", "version", str), ("requests", "requests", _num), ("errors", "errors", _num),
        ("errors_validation", "4xx", _num), ("errors_auth", "401/403", _num), ("errors_server", "5xx", _num),
        ("scored", "scored", _num), ("positive_rate", "positive rate", _pct), ("failover_requests", "failover", _num),
        ("mode", "mode", str), ("latency_p50_ms", "p50 ms", _num), ("latency_p99_ms", "p99 ms", _num),
        ("first_event_at", "first", _time), ("last_event_at", "last", _time),
    ])
    hours = _table(hourly, [
        ("hour_start", "hour (UTC)", _time), ("requests", "requests", _num), ("errors", "errors", _num),
        ("errors_server", "5xx", _num), ("scored", "scored", _num), ("positive_predictions", "positives", _num),
        ("failover_requests", "failover", _num), ("latency_p50_ms", "p50 ms", _num),
        ("latency_p95_ms", "p95 ms", _num), ("latency_p99_ms", "p99 ms", _num),
    ])
    return (
        f"<section id='ops' class='panel' data-panel='ops' data-rows='{len(hourly)}'><h2>Operations</h2>"
        f"<p class='muted'>Every request, refused ones included (<code>mon_ops_hourly</code>; latency: the slowest "
        f"version in the hour).</p><div class='grid'><div>{volume}</div><div>{latency}</div></div>"
        f"<h3>Per model version (whole deployment)</h3>{deployment}"
        f"<details><summary>Hourly numbers ({len(hourly)} hours)</summary>{hours}</details></section>"
    )


# ----- drift --------------------------------------------------------------------------------------
def _drift(d: Dashboard, *, standalone: bool) -> str:
    t = d.thresholds
    numeric = [r for r in d.drift.rows if r["feature_kind"] == "numeric"]
    categorical = [r for r in d.drift.rows if r["feature_kind"] == "categorical"]
    ks_limits = [Limit("warn", t.ks_d_warn, WARN)] * (t.ks_d_warn is not None) + \
        [Limit("critical", t.ks_d_critical, CRITICAL)] * (t.ks_d_critical is not None)
    psi_limits = [Limit("warn", t.psi_warn, WARN)] * (t.psi_warn is not None) + \
        [Limit("critical", t.psi_critical, CRITICAL)] * (t.psi_critical is not None)
    reason = d.drift.missing or "no accepted requests of this version yet"
    ks = charts.bars_against_limits(
        "Numeric inputs: Kolmogorov–Smirnov D vs training", [r["feature"] for r in numeric],
        _floats([r["ks_d"] for r in numeric]), [ks_limits] * len(numeric), [_verdict(r) for r in numeric],
        x_label="KS D (max CDF distance)") if numeric else charts.empty("Numeric inputs: KS D", reason)
    psi = charts.bars_against_limits(
        "Categorical inputs: PSI vs training", [r["feature"] for r in categorical],
        _floats([r["psi"] for r in categorical]), [psi_limits] * len(categorical), [_verdict(r) for r in categorical],
        x_label="population stability index") if categorical else charts.empty("Categorical inputs: PSI", reason)
    table = _table(d.drift, [
        ("feature", "feature", str), ("feature_kind", "kind", str), ("n_production", "n production", _num),
        ("n_reference", "n training", _num), ("ks_d", "KS D", _num), ("ks_p_value", "p (KS / chi²)", _p),
        ("kl_divergence", "KL", _num), ("psi", "PSI", _num), ("verdict", "verdict", _severity),
    ])
    limits = (f"Limits: KS D warn {charts.fmt(t.ks_d_warn)} / critical {charts.fmt(t.ks_d_critical)} (numeric); "
              f"PSI warn {charts.fmt(t.psi_warn)} / critical {charts.fmt(t.psi_critical)} (categorical); a breach "
              "also needs significance (p below the Bonferroni-corrected alpha) and enough rows.")
    return (
        f"<section id='drift' class='panel' data-panel='drift' data-rows='{len(d.drift)}'><h2>Input drift</h2>"
        f"<p class='muted'>Production inputs of version {escape(d.version or 'none')}, "
        f"<strong>{escape(d.drift_window.label)}</strong>, against its training rows "
        f"(<code>mon_drift_numeric</code>, <code>mon_drift_categorical</code>). {escape(limits)}</p>"
        f"<div class='grid'><div>{ks}</div><div>{psi}</div></div>{table}"
        f"{_histograms(d, standalone=standalone)}</section>"
    )


def _histograms(d: Dashboard, *, standalone: bool) -> str:
    if not d.features:
        return (f"<h3>Training vs production histogram</h3><p class='nodata'>no data yet: "
                f"{escape(d.histograms.missing or 'no histograms')}</p>")
    by_feature: dict[str, list[Row]] = {}
    for row in d.histograms.rows:
        by_feature.setdefault(str(row["feature"]), []).append(row)
    links, figures = [], []
    for feature in d.features:
        anchor = f"hist-{quote(feature, safe='')}"
        selected = " class='selected'" if feature == d.feature else ""
        if standalone:
            href = f"#{anchor}"
        else:
            query = {"feature": feature, "window": d.window, **({"version": d.version} if d.version else {})}
            href = f"?{urlencode(query)}#{anchor}"
        links.append(f"<a href='{escape(href, quote=True)}'{selected}>{escape(feature)}</a>")
        rows = by_feature[feature]
        labels = [_bin_label(r) for r in rows]
        svg = charts.grouped_bars(
            f"{feature}: training vs production (share of values)", labels,
            [Series("training", _floats([r["reference_share"] for r in rows]), TRAINING),
             Series("production", _floats([r["production_share"] for r in rows]), PRODUCTION)],
            y_label="share")
        table = _table(Rows(rows), [
            ("bin", "bin", str), ("reference_count", "training n", _num),
            ("reference_share", "training share", _pct), ("production_count", "production n", _num),
            ("production_share", "production share", _pct),
        ], labels=labels)
        css = "hist selected" if feature == d.feature else "hist"
        figures.append(f"<figure id='{escape(anchor, quote=True)}' class='{css}' data-feature='"
                       f"{escape(feature, quote=True)}'>{svg}<details><summary>numbers</summary>{table}</details>"
                       "</figure>")
    return (f"<h3>Training vs production histogram</h3><nav class='features' aria-label='feature'>"
            f"{' '.join(links)}</nav><div class='hists'>{''.join(figures)}</div>")


def _bin_label(row: Row) -> str:
    if row.get("feature_kind") == "numeric":
        low, high = row.get("bin_lower"), row.get("bin_upper")
        if low is None and high is None:
            return str(row.get("bin"))
        if low is None:
            return f"< {charts.fmt(high)}"
        if high is None:
            return f"≥ {charts.fmt(low)}"
        return f"{charts.fmt(low)}–{charts.fmt(high)}"
    label = str(row.get("bin"))
    return f"{label} (unseen)" if row.get("is_unseen") else label


# ----- output -------------------------------------------------------------------------------------
def _output(d: Dashboard) -> str:
    rates = d.positive_rates
    reason = rates.missing or "no scored requests of this version yet"
    interval = charts.intervals(
        "Positive (manual review) rate per group against its interval",
        [Interval(str(r["fairness_group"]), *_floats([r["rate"], r["ci_low"], r["ci_high"], r["expected_rate"]]),
                  bool(r["breach"])) for r in rates.rows],
        x_label="share of applications sent to manual review") if rates else charts.empty(
        "Positive rate per group", reason)
    fairness = d.fairness
    groups = [str(r["fairness_group"]) for r in fairness.rows]
    fpr = charts.dots(
        "False-positive rate per group: estimated, realised, test split", groups,
        [Series("estimated (label-free)", _floats([r.get("estimated_fpr") for r in fairness.rows]), PRODUCTION),
         Series("realised (outcomes)", _floats([r.get("realised_fpr") for r in fairness.rows]), "#2e7d32"),
         Series("test split", _floats([r.get("reference_fpr") for r in fairness.rows]), TRAINING)],
        x_label="P(flagged | repaid)") if fairness else charts.empty(
        "FPR per group", fairness.missing or "no scored requests yet")
    t, gaps = d.thresholds, d.gaps
    gap_labels, gap_values, gap_limits = [], [], []
    gap_severity: list[str | None] = []
    for kind, limit in (("estimated", t.estimated_fpr_gap), ("realised", t.realised_fpr_gap)):
        severity = t.severity.get(f"{kind}_fpr_gap", "critical")
        value = _floats([gaps.get(f"{kind}_fpr_gap")])[0]
        gap_labels.append(f"{kind} FPR gap")
        gap_values.append(value)
        gap_limits.append([Limit(f"{kind} limit ({severity})", limit, WARN if severity == "warn" else CRITICAL)]
                          if limit is not None else [])
        gap_severity.append(severity if value is not None and limit is not None and value > limit else None)
    gap_chart = charts.bars_against_limits("FPR gap (max − min over groups) against its limit", gap_labels,
                                           gap_values, gap_limits, gap_severity, x_label="FPR gap")
    notes = []
    for kind in ("estimated", "realised"):
        value = gaps.get(f"{kind}_fpr_gap")
        if value is None:
            notes.append(f"{kind} gap: {gaps.get(f'{kind}_missing') or 'fewer than two groups large enough'}")
        else:
            notes.append(f"{kind} gap {charts.fmt(value, 4)} over {charts.fmt(gaps.get(f'{kind}_groups'))} groups")
    rate_table = _table(rates, [
        ("fairness_group", "group", str), ("n", "n", _num), ("positives", "positives", _num), ("rate", "rate", _pct),
        ("expected_rate", "expected", _pct), ("ci_low", "interval low", _pct), ("ci_high", "interval high", _pct),
        ("tested", "tested", _bool), ("breach", "outside", _bool),
    ])
    fpr_table = _table(fairness, [
        ("fairness_group", "group", str), ("n", "n", _num), ("estimated_fpr", "estimated FPR", _pct),
        ("reference_fpr", "test-split FPR", _pct), ("estimated_in_gap", "in estimated gap", _bool),
        ("n_with_outcome", "with outcome", _num), ("realised_fpr", "realised FPR", _pct),
        ("realised_tpr", "realised TPR", _pct), ("realised_in_gap", "in realised gap", _bool),
    ])
    return (
        f"<section id='output' class='panel' data-panel='output' data-rows='{len(rates)}'><h2>Model output and "
        f"fairness</h2><p class='muted'>Decisions of version {escape(d.version or 'none')}, "
        f"<strong>{escape(d.output_window.label)}</strong> "
        "(<code>mon_positive_rates</code>, <code>mon_fairness_estimated</code>, <code>mon_realised_quality</code>). "
        "The interval is the exact binomial interval the test-split rate implies at this n (Bonferroni-corrected).</p>"
        f"<div class='grid'><div>{interval}</div><div>{fpr}</div></div>{rate_table}"
        f"<div class='grid'><div>{gap_chart}<p class='muted'>{escape('; '.join(notes))}</p></div>"
        f"<div>{fpr_table}</div></div></section>"
    )


# ----- approval record, footer --------------------------------------------------------------------
def _approval(d: Dashboard) -> str:
    model = d.model
    if model.version is None:
        body = f"<p class='nodata'>no deployed version ({escape(model.registry_error or '')})</p>"
    else:
        body = _table(model.approvals, [
            ("model_version", "version", str), ("decision", "decision", str), ("decided_by", "by", str),
            ("decided_at", "at", _time), ("note", "note", str), ("gate_result", "gate", str),
            ("pipeline_run_id", "pipeline run", str),
        ], empty="no approval record in the snapshot (dlv_approvals)") + _table(model.summary, [
            ("model_version", "version", str), ("deployed_policy", "policy", str), ("auc", "test AUC", _num),
            ("fpr", "test FPR", _pct), ("cost_per_applicant", "cost / applicant", _num),
            ("calibration_error", "calibration error", _num), ("gate_passed", "gate passed", _bool),
            ("run_id", "MLflow run", str),
        ], empty="")
        if model.mlflow_url:
            body += (f"<p>MLflow run: <a href='{escape(model.mlflow_url, quote=True)}' rel='noopener'>"
                     f"{escape(model.mlflow_url)}</a></p>")
    return (f"<section id='approval' class='panel' data-panel='approval' data-rows='{len(model.approvals)}'>"
            f"<h2>Approval record of the deployed version</h2>{body}</section>")


def _footer(d: Dashboard, *, standalone: bool) -> str:
    origin = ("Exported file: a copy of the snapshot as it was; run <code>lendguard dashboard --out FILE</code> again "
              "for a fresh one." if standalone else "Served by the API from the read-only snapshot.")
    return (f"<footer class='muted'><p>{origin} Every number above is a row of a table in "
            f"<code>{escape(d.snapshot_path)}</code>; query it with "
            f"<code>duckdb -readonly {escape(d.snapshot_path)}</code>.</p></footer>")


# ----- tables and formats -------------------------------------------------------------------------
def _table(
    rows: Rows,
    columns: Sequence[tuple[str, str, Callable[..., str]]],
    *,
    empty: str | None = None,
    labels: Sequence[str] | None = None,
) -> str:
    if not rows:
        reason = rows.missing
        text = empty if empty is not None else "no data yet"
        if not text:
            return ""
        return f"<p class='nodata'>{escape(text)}{': ' + escape(reason) if reason else ''}</p>"
    css = [_css(formatter) for _, _, formatter in columns]
    head = "".join(f"<th scope='col' class='{c}'>{escape(header)}</th>"
                   for (_, header, _), c in zip(columns, css, strict=True))
    body = []
    for i, row in enumerate(rows.rows):
        cells = []
        for j, (key, _, formatter) in enumerate(columns):
            text = escape(labels[i]) if labels is not None and j == 0 else formatter(row.get(key))
            cells.append(f"<td class='{css[j]}'>{text}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _utc(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


def _when(value: datetime | None) -> str:
    return "never" if value is None else f"{_utc(value):%Y-%m-%d %H:%M:%S} UTC"


def _time(value: Any) -> str:
    if value is None:
        return "–"
    return escape(f"{_utc(value):%Y-%m-%d %H:%M}") if isinstance(value, datetime) else escape(str(value))


def _number(value: Any) -> float | int | None:
    """A number from whatever DuckDB returned (int, float, Decimal); None for anything else."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _num(value: Any) -> str:
    return escape(charts.fmt(_number(value), 4))


def _pct(value: Any) -> str:
    value = _number(value)
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value * 100:.2f}%"


def _p(value: Any) -> str:
    value = _number(value)
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.3g}"


def _bool(value: Any) -> str:
    return "–" if value is None else ("yes" if value else "no")


def _severity(value: Any) -> str:
    text = "–" if value is None else str(value)
    css = {"critical": "critical", "warn": "warn", "ok": "ok"}.get(text, "")
    return f"<span class='{css}'>{escape(text)}</span>" if css else escape(text)


def _details(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value)
    short = text if len(text) <= 240 else text[:239] + "…"
    return f"<span title='{escape(text, quote=True)}'>{escape(short)}</span>"


_NUMERIC = (_num, _pct, _p)


def _css(formatter: Callable[..., str]) -> str:
    return "num" if formatter in _NUMERIC else "details" if formatter is _details else ""


def _verdict(row: Row) -> str | None:
    verdict = row.get("verdict")
    return str(verdict) if verdict in {"warn", "critical"} else None


def _floats(values: Sequence[Any]) -> list[float | None]:
    return [None if (n := _number(v)) is None else float(n) for v in values]
