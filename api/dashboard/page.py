"""The dashboard as one self-contained HTML page (inline CSS and SVG; no script, nothing fetched).

The layout lives in Jinja templates (``api/dashboard/templates/``, autoescaped: every value from the
snapshot is escaped unless it is markup this module made); this module turns the view-model into
what they show: the SVG charts (:mod:`api.dashboard.charts`), the selector links and the cell
formats.

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
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape

from api.dashboard import charts
from api.dashboard.charts import CRITICAL, WARN, Interval, Limit, Series
from api.dashboard.model import DEPLOYMENT, LATEST, METHOD_MARKS, METHOD_PREFIXES, OVERALL, Dashboard, Row, Rows

TRAINING = "#9e9e9e"
PRODUCTION = "#1f5fa8"
Formatter = Callable[[Any], str]
"""A table column's cell format (the templates name them: ``num``, ``pct``, ``severity``, ...)."""


@dataclass(frozen=True)
class Histogram:
    """One feature's figure: its selector link and its chart with the numbers under it."""

    feature: str
    anchor: str
    href: str
    selected: bool
    svg: Markup
    rows: Rows
    labels: list[str]


def render_page(dashboard: Dashboard, *, standalone: bool = False) -> str:
    """The whole page for ``dashboard``; ``standalone`` for the exported file (see the module doc)."""
    d = dashboard
    approval = d.model.approvals.rows[0] if d.model.approvals and d.model.version is not None else None
    critical = sum(1 for a in d.alerts.rows if a.get("severity") == "critical")
    # drawn in page order: each chart takes the next element id (charts._ids)
    ops, drift, histograms, output = (_ops_charts(d), _drift_charts(d), _histograms(d, standalone=standalone),
                                      _output_charts(d))
    return _TEMPLATES.get_template("dashboard.html.j2").render(
        d=d, standalone=standalone, title=f"lendguard monitoring — {_deployed(d)}",
        version_links=[] if standalone or len(d.versions) <= 1 else
        [(urlencode({"version": v, "window": d.window}), v, v == d.version) for v in d.versions],
        window_links=[] if standalone else [
            (urlencode({"window": window, **({"version": d.version} if d.version else {})}), text, window == d.window)
            for window, text in ((LATEST, "latest count window"), (DEPLOYMENT, "whole deployment"))],
        approval=approval, critical=critical,
        alert_class="critical" if critical else ("warn" if d.alert_count else "ok"),
        charts={**ops, **drift, **output}, histograms=histograms, drift_limits=_drift_limits(d),
        gap_notes=_gap_notes(d), vintage=_vintage_latest(d),
    )


def _deployed(d: Dashboard) -> str:
    """The deployed version as the model card names it (the panels' version is named beside them)."""
    return f"version {d.model.version} ({d.model.alias})" if d.model.version is not None else "no deployed version"


def render_missing(reason: str) -> str:
    """The page before the first build: what is missing and the command that fixes it."""
    return _TEMPLATES.get_template("missing.html.j2").render(title="lendguard monitoring: no data yet", reason=reason)


# ----- charts -------------------------------------------------------------------------------------
def _ops_charts(d: Dashboard) -> dict[str, Markup]:
    hourly = d.ops_hourly
    if not hourly:
        why = hourly.missing or "no requests logged yet"
        return {"volume": _svg(charts.empty("Requests, errors and positive predictions per hour", why)),
                "latency": _svg(charts.empty("Latency per hour (ms)", why))}
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
    return {"volume": _svg(volume), "latency": _svg(latency)}


def _drift_charts(d: Dashboard) -> dict[str, Markup]:
    t = d.thresholds
    numeric = [r for r in d.drift.rows if r["feature_kind"] == "numeric"]
    categorical = [r for r in d.drift.rows if r["feature_kind"] == "categorical"]
    ks_limits = _limits(t.ks_d_warn, t.ks_d_critical)
    psi_limits = _limits(t.psi_warn, t.psi_critical)
    reason = d.drift.missing or "no accepted requests of this version yet"
    ks = charts.bars_against_limits(
        "Numeric inputs: Kolmogorov–Smirnov D vs training", [r["feature"] for r in numeric],
        _floats([r["ks_d"] for r in numeric]), [ks_limits] * len(numeric), [_verdict(r) for r in numeric],
        x_label="KS D (max CDF distance)") if numeric else charts.empty("Numeric inputs: KS D", reason)
    psi = charts.bars_against_limits(
        "Categorical inputs: PSI vs training", [r["feature"] for r in categorical],
        _floats([r["psi"] for r in categorical]), [psi_limits] * len(categorical), [_verdict(r) for r in categorical],
        x_label="population stability index") if categorical else charts.empty("Categorical inputs: PSI", reason)
    return {"ks": _svg(ks), "psi": _svg(psi)}


def _svg(chart: str) -> Markup:
    """A chart as markup: :mod:`api.dashboard.charts` escapes every text it draws itself."""
    return Markup(chart)  # noqa: S704 - see the docstring


def _limits(warn: float | None, critical: float | None) -> list[Limit]:
    levels = (("warn", warn, WARN), ("critical", critical, CRITICAL))
    return [Limit(label, value, color) for label, value, color in levels if value is not None]


def _drift_limits(d: Dashboard) -> str:
    t = d.thresholds
    return (f"Limits: KS D warn {charts.fmt(t.ks_d_warn)} / critical {charts.fmt(t.ks_d_critical)} (numeric); "
            f"PSI warn {charts.fmt(t.psi_warn)} / critical {charts.fmt(t.psi_critical)} (categorical); a breach "
            "also needs significance (p below the Bonferroni-corrected alpha) and enough rows.")


def _histograms(d: Dashboard, *, standalone: bool) -> list[Histogram]:
    by_feature: dict[str, list[Row]] = {}
    for row in d.histograms.rows:
        by_feature.setdefault(str(row["feature"]), []).append(row)
    figures = []
    for feature in d.features:
        anchor = f"hist-{quote(feature, safe='')}"
        if standalone:
            href = f"#{anchor}"
        else:
            query = {"feature": feature, "window": d.window, **({"version": d.version} if d.version else {})}
            href = f"?{urlencode(query)}#{anchor}"
        rows = by_feature[feature]
        labels = [_bin_label(r) for r in rows]
        svg = charts.grouped_bars(
            f"{feature}: training vs production (share of values)", labels,
            [Series("training", _floats([r["reference_share"] for r in rows]), TRAINING),
             Series("production", _floats([r["production_share"] for r in rows]), PRODUCTION)],
            y_label="share")
        figures.append(Histogram(feature, anchor, href, feature == d.feature, _svg(svg), Rows(rows), labels))
    return figures


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


def _output_charts(d: Dashboard) -> dict[str, Markup]:
    rates = d.positive_rates
    reason = rates.missing or "no scored requests of this version yet"
    interval = charts.intervals(
        "Positive (manual review) rate per group against its interval",
        [Interval(str(r["fairness_group"]), rate, low, high, expected, bool(r["breach"])) for r in rates.rows
         for rate, low, high, expected in [_floats([r["rate"], r["ci_low"], r["ci_high"], r["expected_rate"]])]],
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
    for method, kind, limit in [(m, k, lim) for m in gaps.get("methods", ["self_reported"])
                                for k, lim in (("estimated", t.estimated_fpr_gap), ("realised", t.realised_fpr_gap))]:
        severity = t.severity.get(f"{kind}_fpr_gap", "critical")
        value = _floats([gaps.get(f"{METHOD_PREFIXES[method]}{kind}_fpr_gap")])[0]
        gap_labels.append(f"{kind} FPR gap{METHOD_MARKS[method]}")
        gap_values.append(value)
        gap_limits.append([Limit(f"{kind} limit ({severity})", limit, WARN if severity == "warn" else CRITICAL)]
                          if limit is not None else [])
        gap_severity.append(severity if value is not None and limit is not None and value > limit else None)
    gap = charts.bars_against_limits("FPR gap (max − min over groups) against its limit", gap_labels,
                                     gap_values, gap_limits, gap_severity, x_label="FPR gap",
                                     no_values=f"no gap to judge yet: {_gap_notes(d)}")
    return {"interval": _svg(interval), "fpr": _svg(fpr), "gap": _svg(gap), "vintage": _svg(_vintage_chart(d))}


def _vintage_chart(d: Dashboard) -> str:
    """Cumulative default rate by months on book, one line per application-month cohort (all groups)."""
    title = "Vintage curves: cumulative default rate by months on book"
    overall = [r for r in d.vintage.rows if r["fairness_group"] == OVERALL]
    if not overall:
        return charts.empty(title, d.vintage.missing or "no outcomes landed yet (`lendguard outcomes FILE`)")
    months = list(range(max(int(r["months_on_book"]) for r in overall) + 1))
    by_cohort: dict[str, dict[int, float | None]] = {}
    for row in overall:
        by_cohort.setdefault(_month(row["cohort_month"]), {})[int(row["months_on_book"])] = _floats(
            [row["cumulative_default_rate"]])[0]
    series = [Series(f"{cohort} ({charts.fmt(_number(_loans(d, cohort)))} loans)", [rates.get(m) for m in months],
                     charts.PALETTE[i % len(charts.PALETTE)]) for i, (cohort, rates) in enumerate(by_cohort.items())]
    return charts.curves(title, months, series, x_label="months on book (from the application month)",
                         y_label="cumulative default rate")


def _loans(d: Dashboard, cohort: str) -> Any:
    return next((r["loans"] for r in d.vintage.rows
                 if r["fairness_group"] == OVERALL and _month(r["cohort_month"]) == cohort), None)


def _month(value: Any) -> str:
    return f"{value:%Y-%m}" if isinstance(value, date) else str(value)[:7]


def _vintage_latest(d: Dashboard) -> Rows:
    """Each cohort and group at its latest month on book: where every curve has got to."""
    latest: dict[tuple[str, str], Row] = {}
    for row in d.vintage.rows:  # ordered by cohort, group, months on book: the last one stays
        group = "all groups" if row["fairness_group"] == OVERALL else str(row["fairness_group"])
        cohort = _month(row["cohort_month"])
        latest[cohort, group] = {**row, "cohort": cohort, "fairness_group": group}
    return Rows(list(latest.values()), d.vintage.missing)


def _gap_notes(d: Dashboard) -> str:
    notes = []
    for method in d.gaps.get("methods", ["self_reported"]):
        for kind in ("estimated", "realised"):
            value = d.gaps.get(f"{METHOD_PREFIXES[method]}{kind}_fpr_gap")
            name = f"{kind} gap{METHOD_MARKS[method]}"
            if value is None:
                notes.append(f"{name}: {d.gaps.get(f'{kind}_missing') or 'fewer than two groups large enough'}")
            else:
                groups = d.gaps.get(f"{METHOD_PREFIXES[method]}{kind}_groups")
                notes.append(f"{name} {charts.fmt(value, 4)} over {charts.fmt(groups)} groups")
    return "; ".join(notes)


# ----- cell formats (the templates' table columns name them) --------------------------------------
def _utc(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


def _when(value: datetime | None) -> str:
    return "never" if value is None else f"{_utc(value):%Y-%m-%d %H:%M:%S} UTC"


def _time(value: Any) -> str:
    if value is None:
        return "–"
    return f"{_utc(value):%Y-%m-%d %H:%M}" if isinstance(value, datetime) else str(value)


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
    return charts.fmt(_number(value), 4)


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


def _severity(value: Any) -> Markup:
    text = "–" if value is None else str(value)
    css = {"critical": "critical", "warn": "warn", "ok": "ok"}.get(text, "")
    return Markup("<span class='{}'>{}</span>").format(css, text) if css else escape(text)


DETAIL_TEXT_MAX_CHARS = 240
"""A details value longer than this is cut on the page (the whole text stays in its tooltip)."""


def _details(value: Any) -> Markup:
    """An alert's details (a JSON object from ``mon_alerts``) as labelled fields, one per line;
    anything that is not a JSON object is shown as text."""
    if value is None:
        return Markup("")
    fields = value if isinstance(value, dict) else _json_object(value)
    if fields is None:
        return _cut(value if isinstance(value, str) else json.dumps(value))
    items = Markup("").join(
        Markup("<dt>{}</dt><dd>{}</dd>").format(str(key).replace("_", " "), _field_value(item))
        for key, item in fields.items())
    return Markup("<dl class='fields'>{}</dl>").format(items)


def _json_object(text: Any) -> dict[str, Any] | None:
    if not isinstance(text, str):
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _field_value(value: Any) -> Markup:
    if isinstance(value, dict):
        return Markup(", ").join(Markup("{} {}").format(k, _field_value(v)) for k, v in value.items())
    if isinstance(value, bool) or value is None:
        return escape(_bool(value))
    if isinstance(value, int | float):
        return escape(charts.fmt(value, 4))
    return _cut(value if isinstance(value, str) else json.dumps(value))


def _cut(text: str) -> Markup:
    if len(text) <= DETAIL_TEXT_MAX_CHARS:
        return escape(text)
    return Markup("<span title='{}'>{}</span>").format(text, text[:DETAIL_TEXT_MAX_CHARS - 1] + "…")


_NUMERIC = (_num, _pct, _p)


def _css(formatter: Formatter) -> str:
    return "num" if formatter in _NUMERIC else "details" if formatter is _details else ""


def _verdict(row: Row) -> str | None:
    verdict = row.get("verdict")
    return str(verdict) if verdict in {"warn", "critical"} else None


def _floats(values: Sequence[Any]) -> list[float | None]:
    return [None if (n := _number(v)) is None else float(n) for v in values]


_TEMPLATES = Environment(
    loader=PackageLoader("api.dashboard", "templates"), autoescape=True, undefined=StrictUndefined,
    trim_blocks=True, lstrip_blocks=True,
)
_TEMPLATES.globals.update(text=str, num=_num, pct=_pct, p=_p, yesno=_bool, severity=_severity, details=_details,
                          time=_time, when=_when, css=_css)
