"""Gather, render and write one version's report: what the request-approval stage and ``lendguard report`` call."""

from __future__ import annotations

import logging
from pathlib import Path

from ml.report.content import ModelReport, gather
from ml.report.page import ReportLink, log_artifact, render, report_file, write_html
from warehouse.paths import Paths

log = logging.getLogger(__name__)


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
