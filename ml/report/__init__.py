"""The model report: what an approver reads before deciding on a candidate version.

One self-contained HTML page per version (:mod:`ml.report.page`): both policies' cost and FPR gap,
per-group FPR and TPR with exact intervals, the cost curve, ROC, calibration, feature importance,
the monotone-direction checks the loan-book contract declares, and the comparison with the
champion on the same test rows. The numbers the gate judged are read from the evaluation tables
(:mod:`ml.report.content`); the rest is computed on the test rows (:mod:`ml.report.compute`).
The request-approval stage writes it, logs it to the version's MLflow run and links it in the
approval request; ``lendguard report VERSION`` writes it again.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ml.report.content import ModelReport, ReportError, gather
from ml.report.page import ARTIFACT_DIR, ReportLink, log_artifact, render, report_file, write_html
from warehouse.paths import Paths

log = logging.getLogger(__name__)

__all__ = ["ARTIFACT_DIR", "ModelReport", "ReportError", "ReportLink", "report_file", "write_report"]


def write_report(
    paths: Paths, version: str, *, out: Path | None = None, log_to_mlflow: bool = False
) -> tuple[ModelReport, ReportLink]:
    """Gather, render and write ``version``'s report (default: ``reports/model-VERSION.html`` in the
    data directory); with ``log_to_mlflow`` also log it to the version's run. Regenerating does not
    log: the artifact stays the page the approver was sent."""
    report = gather(paths, version)
    file = write_html(render(report), out if out is not None else report_file(paths.data_dir, version))
    uri = log_artifact(paths.tracking_uri, report.run_id, file) if log_to_mlflow else None
    log.info("model report of version %s: %s", version, file)
    return report, ReportLink(str(file), uri)
