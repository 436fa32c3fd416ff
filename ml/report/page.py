"""The report as one self-contained HTML page (Jinja template, inline SVG and CSS, no script),
written atomically and logged to the version's MLflow run."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from ml.metrics import OVERALL
from ml.report import charts
from ml.report.content import ModelReport, ReportError

log = logging.getLogger(__name__)

ARTIFACT_DIR = "report"
"""Where the report sits among the version's run artifacts."""


@dataclass(frozen=True)
class ReportLink:
    """Where the report is: the file written, and its copy among the run's MLflow artifacts."""

    path: str
    artifact_uri: str | None


def report_file(data_dir: Path, version: str) -> Path:
    """The default place of ``version``'s report in the deployment's data directory."""
    return data_dir / "reports" / f"model-{version}.html"


def fmt(value: Any, digits: int = 4) -> str:
    """A table cell: ``–`` for missing, whole numbers with separators, rates with ``digits``."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() and abs(value) >= 1 else f"{value:.{digits}f}"
    return str(value)


def _charts(report: ModelReport) -> dict[str, Markup]:
    curves = [charts.Line(f"{policy} (out of fold)", rows["target_fpr"], rows["cost_per_applicant"],
                          charts.POLICY_COLORS.get(str(policy), "#444444"))
              for policy, rows in report.cost_curves.groupby("policy", sort=True)]
    chosen = [charts.Point(f"{row.policy} chosen", float(row.target_fpr), float(row.cost_per_applicant),
                           charts.POLICY_COLORS.get(str(row.policy), "#444444"))
              for row in report.cost_curves[report.cost_curves["is_chosen"]].itertuples()]
    roc = [charts.Line(f"candidate {report.version}", report.roc["fpr"], report.roc["tpr"], charts.CANDIDATE_COLOR)]
    if report.champion_roc is not None:
        roc.append(charts.Line(f"champion {report.champion_version}", report.champion_roc["fpr"],
                               report.champion_roc["tpr"], charts.CHAMPION_COLOR, dashed=True))
    operating = [charts.Point(f"{p.policy} (test)", p.fpr, p.tpr, charts.POLICY_COLORS.get(p.policy, "#444444"))
                 for p in report.policies]
    panels = []
    for policy, rows in report.groups.groupby("policy", sort=True):
        color = charts.POLICY_COLORS.get(str(policy), "#444444")
        panels.append((f"FPR, {policy}", color, [charts.Whisker(r.group_name, r.fpr, r.fpr_ci_low, r.fpr_ci_high)
                                                  for r in rows.itertuples()]))
        panels.append((f"TPR, {policy}", color, [charts.Whisker(r.group_name, r.tpr, r.tpr_ci_low, r.tpr_ci_high)
                                                  for r in rows.itertuples()]))
    made = {
        "cost_curve": charts.lines("Expected cost per applicant against the FPR", curves, points=chosen,
                                   x_label="false-positive rate (common target, or realised)",
                                   y_label="cost per applicant"),
        "roc": charts.lines("ROC on the test split", roc, points=operating, x_label="false-positive rate",
                            y_label="true-positive rate", diagonal=True, square=True),
        "calibration": charts.lines("Calibration on the test split (equal-frequency bins)", [charts.Line(
            "candidate", report.calibration["predicted"], report.calibration["observed"], charts.CANDIDATE_COLOR,
            markers=True)], x_label="mean predicted probability of default", y_label="observed default rate",
            diagonal=True, square=True),
        "groups": charts.intervals(f"Per-group rates with {1 - report.rules['fpr_ci_alpha']:.0%} exact intervals",
                                   panels, x_label="rate"),
        "permutation": charts.bars("Permutation importance (drop in test AUC)",
                                   [i.feature for i in report.permutation], [i.value for i in report.permutation],
                                   errors=[i.spread or 0.0 for i in report.permutation], x_label="AUC drop"),
    }
    if report.coefficients is not None:
        made["coefficients"] = charts.bars("Coefficients (log-odds of default; numeric inputs per standard deviation)",
                                           [i.feature for i in report.coefficients],
                                           [i.value for i in report.coefficients], x_label="coefficient")
    return {name: Markup(svg) for name, svg in made.items()}  # noqa: S704 - our own SVG, its text escaped by matplotlib


def render(report: ModelReport) -> str:
    """The page's HTML."""
    return _TEMPLATES.get_template("model_report.html.j2").render(
        report=report, charts=_charts(report), summary=report.summary(), overall=OVERALL,
    )


def write_html(html: str, out: Path) -> Path:
    """Write atomically: a reader never sees half a page."""
    partial = out.with_name(f".{out.name}.partial")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(html, encoding="utf-8")
        partial.replace(out)
    except OSError as exc:
        raise ReportError(f"cannot write the model report to {out}: {exc.strerror or exc}") from exc
    return out


def log_artifact(tracking_uri: str, run_id: str, file: Path) -> str:
    """Log the page to the run; return its artifact URI."""
    from mlflow import MlflowClient  # noqa: PLC0415 - about a second to import

    client = MlflowClient(tracking_uri=tracking_uri)
    client.log_artifact(run_id, str(file), artifact_path=ARTIFACT_DIR)
    return f"{client.get_run(run_id).info.artifact_uri}/{ARTIFACT_DIR}/{file.name}"


_TEMPLATES = Environment(
    loader=PackageLoader("ml.report", "templates"), autoescape=True,
    undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
)
_TEMPLATES.globals.update(fmt=fmt)
