"""The dashboard's view-model: everything the page shows, read once from the published snapshot.

Readers never open the file dbt writes: the marts come from the published build, one read
(:func:`warehouse.marts.open_marts`), the failover flag from its file, the deployed
version from the registry's ``champion`` alias. Every part fails soft: a mart or column that does
not exist yet (the monitoring marts grow with the project) leaves its chart with a reason
("no data yet: ...") instead of failing the page; only a missing snapshot is an error
(:class:`warehouse.publish.SnapshotMissingError`), because then there is nothing to show at all.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from warehouse.failover import FailoverState, read_failover
from warehouse.marts import MartError, MartReader, open_marts
from warehouse.paths import Paths
from warehouse.project import project_vars
from warehouse.publish import snapshot_age_seconds

log = logging.getLogger(__name__)

DEPLOYMENT = "deployment"
LATEST = "latest"
WINDOWS = (LATEST, DEPLOYMENT)
"""What the drift and output panels show: the latest full-enough count window, or the whole deployment."""
MAX_HOURS = 24 * 31
"""Most hourly points the ops charts draw (the latest ones)."""
MAX_ALERTS = 50
MAX_COHORTS = 12
"""Most application-month cohorts the vintage curves show (the latest ones)."""
OVERALL = "__overall__"
"""The group name of a mart row over every group (``mon_vintage_default_rates``)."""
ALIAS = "champion"

Row = dict[str, Any]


@dataclass(frozen=True)
class Rows:
    """The rows behind one chart or table, or why there are none."""

    rows: list[Row] = field(default_factory=list)
    missing: str | None = None
    """Why there are no rows when it is not simply "none yet": the mart or a column is not in the snapshot."""

    def __len__(self) -> int:
        return len(self.rows)

    def __bool__(self) -> bool:
        return bool(self.rows)

    def column(self, name: str) -> list[Any]:
        return [r.get(name) for r in self.rows]


@dataclass(frozen=True)
class ModelInfo:
    """The deployed version and where its evidence is: MLflow run and approval record."""

    alias: str
    version: str | None
    run_id: str | None = None
    experiment_id: str | None = None
    mlflow_url: str | None = None
    registry_error: str | None = None
    approvals: Rows = field(default_factory=Rows)
    summary: Rows = field(default_factory=Rows)
    """Its ``dlv_model_versions`` row: test-split metrics, gate verdict, decision."""


@dataclass(frozen=True)
class Thresholds:
    """The policy values the charts draw as limits (``dbt_project.yml`` vars; None when absent)."""

    ks_d_warn: float | None
    ks_d_critical: float | None
    psi_warn: float | None
    psi_critical: float | None
    latency_p99_ms: float | None
    server_error_rate: float | None
    estimated_fpr_gap: float | None
    realised_fpr_gap: float | None
    test_fpr_gap: float | None
    severity: dict[str, str] = field(default_factory=dict)
    """Each check's severity (``monitor_severity``): warn or critical."""

    @classmethod
    def from_vars(cls, values: dict[str, Any]) -> Thresholds:
        def number(name: str) -> float | None:
            value = values.get(name)
            return float(value) if isinstance(value, int | float) else None

        return cls(
            ks_d_warn=number("drift_ks_d_warn"), ks_d_critical=number("drift_ks_d_critical"),
            psi_warn=number("drift_psi_warn"), psi_critical=number("drift_psi_critical"),
            latency_p99_ms=number("max_latency_p99_ms"), server_error_rate=number("max_server_error_rate"),
            estimated_fpr_gap=number("max_estimated_fpr_gap"), realised_fpr_gap=number("max_realised_fpr_gap"),
            test_fpr_gap=number("max_fpr_gap"),
            severity={str(k): str(v) for k, v in (values.get("monitor_severity") or {}).items()},
        )


@dataclass(frozen=True)
class Window:
    """The window a panel shows: its kind and index (0 for the deployment) and, once read, its bounds."""

    kind: str
    index: int
    start: datetime | None = None
    end: datetime | None = None
    requests: int | None = None

    @property
    def key(self) -> tuple[str, int]:
        return self.kind, self.index

    @property
    def label(self) -> str:
        name = "whole deployment" if self.kind == DEPLOYMENT else f"latest count window #{self.index}"
        if self.start is None:
            return name
        size = "" if self.requests is None else f"{self.requests:,} requests, "
        return f"{name} ({size}{self.start:%Y-%m-%d %H:%M} → {self.end or self.start:%Y-%m-%d %H:%M} UTC)"


@dataclass(frozen=True)
class Dashboard:
    """What the page shows. Built by :func:`load_dashboard`, rendered by :mod:`api.dashboard.page`."""

    generated_at: datetime
    snapshot_path: str
    snapshot_published_at: datetime | None
    model: ModelInfo
    version: str | None
    """The version the drift and output panels show (the champion unless asked otherwise)."""
    versions: list[str]
    """Versions with monitoring data (for the version selector)."""
    failover: FailoverState
    alerts: Rows
    alert_count: int
    ops_hourly: Rows
    ops_deployment: Rows
    drift: Rows
    histograms: Rows
    features: list[str]
    window: str
    """What was asked for the drift and output panels: ``latest`` or ``deployment`` (see ``load_dashboard``)."""
    feature: str | None
    """The feature whose histogram is shown first (``?feature=``, else the most drifted)."""
    positive_rates: Rows
    fairness: Rows
    """Per group: estimated FPR, reference (test-split) FPR, realised FPR once outcomes land."""
    gaps: Row
    thresholds: Thresholds
    drift_window: Window = field(default_factory=lambda: Window(DEPLOYMENT, 0))
    output_window: Window = field(default_factory=lambda: Window(DEPLOYMENT, 0))
    vintage: Rows = field(default_factory=Rows)
    """The version's vintage curves (``mon_vintage_default_rates``): every cohort, month on book and group."""

    @property
    def panel_rows(self) -> dict[str, int]:
        """Rows behind each panel (the page's ``data-rows``): 0 means the panel has no data yet."""
        return {"ops": len(self.ops_hourly), "drift": len(self.drift), "output": len(self.positive_rates)}


def load_dashboard(
    paths: Paths,
    mlflow_ui_url: str,
    *,
    feature: str | None = None,
    version: str | None = None,
    window: str = LATEST,
    with_registry: bool = True,
) -> Dashboard:
    """Read everything the page shows. Raises ``SnapshotMissingError`` before the first build.

    ``window``: ``latest`` (the drift and output panels show the version's latest count window with
    at least ``drift_min_window_rows`` requests: what detection judges now; the whole deployment
    until there is one) or ``deployment`` (everything the version did). ``mlflow_ui_url``: where the
    MLflow UI runs, for the link to the deployed version's run.
    """
    if window not in WINDOWS:
        raise ValueError(f"unknown window {window!r}; expected one of {list(WINDOWS)}")
    model = (_model_info(paths, mlflow_ui_url) if with_registry
             else ModelInfo(ALIAS, None, registry_error="registry not asked"))
    age = snapshot_age_seconds(paths)
    now = datetime.now(UTC)
    with open_marts(paths) as con:
        versions = _versions(con)
        shown = version or model.version or (versions[0] if versions else None)
        if version is None and shown is not None and versions and shown not in versions:
            shown = versions[0]  # the champion has no traffic yet: show the latest version that has
        if model.version is not None:
            model = _with_records(con, model)
        min_rows = int(project_vars().get("drift_min_window_rows", 500))
        drift_window = _window(con, "mon_drift_numeric", "n_production", shown, asked=window, min_rows=min_rows)
        output_window = _window(con, "mon_positive_rates", "weight", shown, asked=window, min_rows=min_rows)
        drift = _drift(con, shown, drift_window)
        histograms = _rows(con, _HISTOGRAMS_SQL, [shown, *drift_window.key])
        features = list(dict.fromkeys(str(f) for f in histograms.column("feature")))
        alerts = _rows(con, _ALERTS_SQL, [MAX_ALERTS])
        count = _rows(con, "select count(*) as n from mon_alerts")
        fairness, gaps = _fairness(con, shown, output_window)
        positive_rates = _rows(con, _POSITIVE_RATES_SQL, [shown, *output_window.key])
        return Dashboard(
            generated_at=now,
            snapshot_path=str(paths.snapshot),
            snapshot_published_at=None if age is None else datetime.fromtimestamp(now.timestamp() - age, UTC),
            model=model,
            version=shown,
            versions=versions,
            failover=read_failover(paths),
            alerts=alerts,
            alert_count=int(count.rows[0]["n"]) if count else 0,
            ops_hourly=_rows(con, _OPS_HOURLY_SQL, [MAX_HOURS]),
            ops_deployment=_rows(con, _OPS_DEPLOYMENT_SQL),
            drift=drift,
            histograms=histograms,
            features=features,
            window=window,
            feature=_chosen_feature(feature, features, drift),
            positive_rates=positive_rates,
            drift_window=_described(drift_window, drift.rows, "n_production"),
            output_window=_described(output_window, positive_rates.rows, "weight"),
            fairness=fairness,
            gaps=gaps,
            thresholds=Thresholds.from_vars(project_vars()),
            vintage=_rows(con, _VINTAGE_SQL, [shown, MAX_COHORTS]),
        )


# ----- queries ------------------------------------------------------------------------------------
def _rows(con: MartReader, sql: str, params: Sequence[Any] = ()) -> Rows:
    """Run one query; a missing mart or column gives no rows and the reason, never an exception."""
    try:
        rows = con.rows(sql, params)
    except MartError as exc:
        log.info("dashboard query fell back to no data: %s", exc)
        return Rows([], f"not in the snapshot yet ({exc})")
    return Rows(rows)


def _versions(con: MartReader) -> list[str]:
    """Model versions with traffic, the latest first."""
    found = _rows(con, "select model_version from mon_ops_deployment where model_version <> '(none)' "
                       "order by last_event_at desc nulls last")
    return [str(v) for v in found.column("model_version")]


_OPS_HOURLY_SQL = """
with hours as (
    select
        hour_start,
        sum(requests) as requests,
        sum(errors) as errors,
        sum(errors_server) as errors_server,
        sum(scored) as scored,
        sum(positive_predictions) as positive_predictions,
        sum(failover_requests) as failover_requests,
        max(latency_p50_ms) as latency_p50_ms,
        max(latency_p95_ms) as latency_p95_ms,
        max(latency_p99_ms) as latency_p99_ms
    from mon_ops_hourly
    group by hour_start
    order by hour_start desc
    limit ?
)
select * from hours order by hour_start
"""

_OPS_DEPLOYMENT_SQL = """
select model_version, requests, errors, errors_validation, errors_auth, errors_server, scored,
    positive_predictions, positive_rate, failover_requests, mode, latency_p50_ms, latency_p95_ms, latency_p99_ms,
    first_event_at, last_event_at
from mon_ops_deployment
order by last_event_at desc nulls last
"""

_ALERTS_SQL = """
select alert_id, check_name, subject, model_version, window_kind, window_start, window_end, value, threshold,
    severity, details
from mon_alerts
order by severity = 'critical' desc, window_start desc nulls last, check_name, subject
limit ?
"""

_NUMERIC_DRIFT_SQL = """
select feature, 'numeric' as feature_kind, window_start, window_end, n_production, n_reference, ks_d, ks_p_value,
    cast(null as double) as kl_divergence, psi, verdict
from mon_drift_numeric
where model_version = ? and window_kind = ? and window_index = ?
"""

_CATEGORICAL_DRIFT_SQL = """
select feature, 'categorical' as feature_kind, window_start, window_end, n_production, n_reference,
    cast(null as double) as ks_d, chi2_p_value as ks_p_value, kl_divergence, psi, verdict
from mon_drift_categorical
where model_version = ? and window_kind = ? and window_index = ?
"""

_HISTOGRAMS_SQL = """
select feature, feature_kind, bin, bin_index, bin_lower, bin_upper, is_unseen, reference_count, production_count,
    reference_share, production_share
from mon_feature_histograms
where model_version = ? and window_kind = ? and window_index = ?
order by feature_kind desc, feature, bin_index nulls last, reference_count desc, bin
"""

METHOD_PREFIXES = {"self_reported": "", "bisg": "bisg_"}
"""The methods (``mon_*.method``: how group membership is known) in the order the panels show them,
and their gaps' key prefix."""
METHOD_MARKS = {"self_reported": "", "bisg": " · BISG"}
"""How a method's numbers are marked on the page: a BISG-weighted row's group reads 'Hispanic · BISG',
so both methods' rows stand side by side."""
_GROUP_LABEL = ("fairness_group || case method "
                + " ".join(f"when '{method}' then '{mark}'" for method, mark in METHOD_MARKS.items())
                + " else '' end as fairness_group")

_POSITIVE_RATES_SQL = f"""
select method, {_GROUP_LABEL}, window_start, window_end, n, weight, n_eff, positives, rate, expected_rate,
    ci_low, ci_high, tested, breach
from mon_positive_rates
where model_version = ? and window_kind = ? and window_index = ?
order by method desc, fairness_group
"""

_ESTIMATED_SQL = f"""
select method, {_GROUP_LABEL}, n, estimated_fpr, reference_fpr, in_gap, estimated_fpr_gap, groups_in_gap
from mon_fairness_estimated
where model_version = ? and window_kind = ? and window_index = ?
order by method desc, fairness_group
"""

_REALISED_SQL = f"""
select method, {_GROUP_LABEL}, n_with_outcome, repaid, repaid_effective, realised_fpr, realised_fpr_ci_low,
    realised_fpr_ci_high, realised_tpr, in_gap, realised_fpr_gap, groups_in_gap
from mon_realised_quality
where model_version = ? and window_kind = ? and window_index = ?
order by method desc, fairness_group
"""


_VINTAGE_SQL = """
select cohort_month, months_on_book, fairness_group, loans, defaults_in_month, cumulative_defaults,
    cumulative_default_rate
from mon_vintage_default_rates
where model_version = $1 and cohort_month in (
    select distinct cohort_month from mon_vintage_default_rates where model_version = $1
    order by cohort_month desc limit $2)
order by cohort_month, fairness_group, months_on_book
"""


def _drift(con: MartReader, version: str | None, window: Window) -> Rows:
    """Numeric (KS D, PSI) and categorical (KL, PSI, chi-square p) inputs, one row per feature."""
    numeric = _rows(con, _NUMERIC_DRIFT_SQL, [version, *window.key])
    categorical = _rows(con, _CATEGORICAL_DRIFT_SQL, [version, *window.key])
    rows = sorted(numeric.rows, key=lambda r: -(r["ks_d"] or 0)) + sorted(
        categorical.rows, key=lambda r: -(r["psi"] or 0))
    if rows:
        return Rows(rows)
    return Rows([], numeric.missing or categorical.missing)


def _fairness(con: MartReader, version: str | None, window: Window) -> tuple[Rows, Row]:
    """Estimated and realised FPR per group (and method) side by side, and both gaps per method: keys
    ``estimated_fpr_gap`` ... for self-reported groups, ``bisg_estimated_fpr_gap`` ... for BISG's;
    ``methods`` lists the methods present."""
    estimated = _rows(con, _ESTIMATED_SQL, [version, *window.key])
    realised = _rows(con, _REALISED_SQL, [version, *window.key])
    by_group: dict[str, Row] = {}
    for row in estimated.rows:
        by_group[str(row["fairness_group"])] = {
            "method": row["method"], "fairness_group": row["fairness_group"], "n": row["n"],
            "estimated_fpr": row["estimated_fpr"],
            "reference_fpr": row["reference_fpr"], "estimated_in_gap": row["in_gap"],
        }
    for row in realised.rows:
        entry = by_group.setdefault(str(row["fairness_group"]),
                                    {"method": row["method"], "fairness_group": row["fairness_group"]})
        entry.update(n_with_outcome=row["n_with_outcome"], repaid=row["repaid"],
                     repaid_effective=row["repaid_effective"], realised_fpr=row["realised_fpr"],
                     realised_fpr_ci_low=row["realised_fpr_ci_low"], realised_fpr_ci_high=row["realised_fpr_ci_high"],
                     realised_tpr=row["realised_tpr"], realised_in_gap=row["in_gap"])
    methods = [m for m in METHOD_PREFIXES if any(r["method"] == m for r in [*estimated.rows, *realised.rows])]
    gaps: Row = {
        "methods": methods or ["self_reported"],
        "estimated_missing": estimated.missing,
        "realised_missing": realised.missing or "no outcomes landed yet (`lendguard outcomes FILE`)",
    }
    for method, prefix in METHOD_PREFIXES.items():
        for kind, rows_of_kind in (("estimated", estimated.rows), ("realised", realised.rows)):
            own = [r for r in rows_of_kind if r["method"] == method]
            gaps[f"{prefix}{kind}_fpr_gap"] = next((r[f"{kind}_fpr_gap"] for r in own), None)
            gaps[f"{prefix}{kind}_groups"] = next((r["groups_in_gap"] for r in own), None)
    rows = sorted(by_group.values(), key=lambda r: (list(METHOD_PREFIXES).index(str(r["method"])),
                                                      str(r["fairness_group"])))
    return Rows(rows, None if rows else estimated.missing), gaps


def _window(
    con: MartReader, mart: str, size: str, version: str | None, *, asked: str, min_rows: int
) -> Window:
    """The latest count window of ``version`` in ``mart`` with at least ``min_rows`` requests (``size``:
    ``weight``, summed over the groups of one method, or a per-feature count, its maximum), else the deployment."""
    if asked == DEPLOYMENT:
        return Window(DEPLOYMENT, 0)
    # Requests in a window: the sum of the groups' membership weights over one method (each method's
    # weights add up to the window's requests), or the largest count of a feature's rows.
    total = f"sum({size}) / count(distinct method)" if size == "weight" else f"max({size})"
    found = _rows(con, f"select max(window_index) as window_index from (select window_index from {mart} "
                       f"where model_version = ? and window_kind = 'count' group by window_index "
                       f"having {total} >= ?)", [version, min_rows])
    index = found.rows[0]["window_index"] if found else None
    return Window(DEPLOYMENT, 0) if index is None else Window("count", int(index))


def _described(window: Window, rows: list[Row], size: str) -> Window:
    """``window`` with its bounds and size, from the rows read for it."""
    if not rows:
        return window
    method = rows[0].get("method")  # one method's rows partition the window's requests (both would count twice)
    sizes = [value for r in rows if (value := r.get(size)) is not None and r.get("method") == method]
    total = sum(sizes) if size == "weight" else max(sizes, default=None)
    return Window(window.kind, window.index, rows[0].get("window_start"), rows[0].get("window_end"),
                  None if total is None else int(total))


def _chosen_feature(asked: str | None, features: list[str], drift: Rows) -> str | None:
    if asked in features:
        return asked
    for row in drift.rows:  # the most drifted numeric input first (drift rows are sorted)
        if row["feature"] in features:
            return str(row["feature"])
    return features[0] if features else None


# ----- the deployed version -----------------------------------------------------------------------
def _model_info(paths: Paths, mlflow_ui_url: str) -> ModelInfo:
    """The champion's version, run and experiment from the registry (fail soft: unreachable → reason).

    How long an unreachable registry may take is the process's choice (``REGISTRY_FAIL_FAST``).
    """
    try:
        from mlflow import MlflowClient  # noqa: PLC0415 - about a second, paid only here
        from mlflow.exceptions import MlflowException  # noqa: PLC0415 - as above

        from ml.registry import MODEL_NAME, connect  # noqa: PLC0415 - start-up cost: about a second, paid only here

        connect(paths)
        client = MlflowClient()
        try:
            version = client.get_model_version_by_alias(MODEL_NAME, ALIAS)
        except MlflowException:
            return ModelInfo(ALIAS, None, registry_error=f"no version carries the {ALIAS!r} alias yet")
        assert version.run_id is not None, "ml.registry registers every version from its training run"
        experiment_id = str(client.get_run(version.run_id).info.experiment_id)
    except Exception as exc:  # the registry is down or misconfigured: the page still renders
        return ModelInfo(ALIAS, None, registry_error=f"registry unreachable ({type(exc).__name__})")
    run_id = str(version.run_id)
    return ModelInfo(ALIAS, str(version.version), run_id, experiment_id,
                     f"{mlflow_ui_url}/#/experiments/{experiment_id}/runs/{run_id}")


def _with_records(con: MartReader, model: ModelInfo) -> ModelInfo:
    approvals = _rows(con, "select model_version, decision, decided_by, note, decided_at, gate_result, "
                           "pipeline_run_id from dlv_approvals where model_version = ? order by decided_at desc",
                      [model.version])
    summary = _rows(con, "select model_version, run_id, deployed_policy, auc, fpr, cost_per_applicant, "
                         "calibration_error, gate_passed, decision, decided_by, decided_at "
                         "from dlv_model_versions where model_version = ?", [model.version])
    return ModelInfo(model.alias, model.version, model.run_id, model.experiment_id, model.mlflow_url,
                     model.registry_error, approvals, summary)
