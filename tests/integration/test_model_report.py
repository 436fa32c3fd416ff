"""The model report of the session's trained version: its numbers are the evaluation tables' and
the gate's, what it computes agrees with them, and `lendguard report` writes it."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from lendguard import cli
from ml import registry
from ml.metrics import OVERALL
from ml.report import compute
from ml.report.content import ModelReport, declared_monotone
from ml.report.page import ReportLink
from ml.report.writer import write_report
from tests.support.deployment import deployment_env
from tests.support.report_page import SECTIONS, Page
from warehouse.build import current_loan_book
from warehouse.paths import Paths, get_paths
from warehouse.publish import connect_snapshot
from warehouse.settings import get_settings


@pytest.fixture(scope="module")
def written(trained_deployment: Paths, tmp_path_factory: pytest.TempPathFactory) -> tuple[ModelReport, ReportLink]:
    version = registry.alias_version(trained_deployment, "champion")
    assert version is not None
    return write_report(trained_deployment, version, out=tmp_path_factory.mktemp("report") / "report.html")


def test_the_report_shows_the_evaluation_and_the_gates_numbers(
    trained_deployment: Paths, written: tuple[ModelReport, ReportLink]
) -> None:
    report, link = written
    with connect_snapshot(trained_deployment) as con:
        overall = con.execute("select policy, cost_per_applicant, auc, calibration_error, fpr from eval_metrics "
                              "where candidate_version = ? and role = 'candidate' and group_name = ?",
                              [report.version, OVERALL]).fetchall()
        gate_gap = con.execute("select measured_value from eval_gate_checks where model_version = ? "
                               "and check_name = 'fpr_gap'", [report.version]).fetchone()
        groups = con.execute("select fpr_ci_low, fpr_ci_high from eval_metrics where candidate_version = ? "
                             "and group_name <> ?", [report.version, OVERALL]).fetchall()
    page = Page(Path(link.path).read_text())
    assert list(page.sections) == SECTIONS
    assert page.fetching == []
    assert len(overall) == 2
    for policy, cost, auc, _, fpr in overall:
        assert f"{cost:.4f}" in page.sections["policies"], policy
        assert f"{fpr:.4f}" in page.sections["policies"], policy
        assert report.policy(policy).auc == auc
    _, _, auc, calibration, _ = overall[0]  # one model: the same AUC and calibration under both policies
    for low, high in groups:
        assert f"{low:.4f} – {high:.4f}" in page.sections["groups"]
    assert gate_gap is not None
    assert report.policy(report.deployed_policy).fpr_gap == pytest.approx(gate_gap[0], abs=1e-12)
    assert f"{gate_gap[0]:.4f}" in page.sections["policies"]
    # What the report computes on the test rows agrees with what the evaluate stage landed
    assert report.warnings == []
    assert compute.area_under(report.roc) == pytest.approx(auc, abs=1e-9)
    assert compute.weighted_gap(report.calibration) == pytest.approx(calibration, abs=1e-9)
    assert int(report.calibration["n"].sum()) == report.test_rows
    assert report.gate_passed is True
    declared = len(declared_monotone(current_loan_book(trained_deployment)))
    assert declared == 12, "the simulator's contract declares its directions of risk"
    assert report.monotone.results is not None
    assert report.monotone.results["passed"].all(), report.monotone.results
    assert f"checks hold ({declared} declared)" in page.sections["monotone"]
    assert "first production model" in page.sections["champion"]


def test_importance_covers_every_model_input(
    trained_deployment: Paths, written: tuple[ModelReport, ReportLink]
) -> None:
    report, _ = written
    loan_book = registry.load_version(trained_deployment, report.version).loan_book
    assert {i.feature for i in report.permutation} == set(loan_book.feature_names)
    assert report.permutation[0].value > 0  # something matters
    if report.family == "logistic_regression":
        assert report.coefficients is not None
        assert set(loan_book.model_numeric) <= {i.feature for i in report.coefficients}


@pytest.fixture
def cli_on(trained_deployment: Paths, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The in-process CLI pointed at the shared deployment (read only: the report goes elsewhere)."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    for name, value in deployment_env(trained_deployment.data_dir).items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    get_paths.cache_clear()
    yield
    get_settings.cache_clear()
    get_paths.cache_clear()
    root.setLevel(level)
    root.handlers = handlers


def test_lendguard_report_writes_the_page_and_prints_its_summary(
    trained_deployment: Paths, cli_on: None, tmp_path: Path
) -> None:
    version = registry.alias_version(trained_deployment, "champion")
    out = tmp_path / "nested" / "model.html"
    result = CliRunner().invoke(cli.cli, ["report", str(version), "--out", str(out)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert f"report: {out}" in result.output
    assert "group_thresholds (deployed)" in result.output
    assert re.search(r"monotone directions: (\d+) of \1 checks hold", result.output), result.output
    assert list(Page(out.read_text()).sections) == SECTIONS

    unknown = CliRunner().invoke(cli.cli, ["report", "999"])
    assert unknown.exit_code == 1
    assert unknown.stderr.strip().splitlines() == [
        "error: version 999 has no evaluation in the published snapshot: run `lendguard pipeline run` "
        "(or `lendguard build` after its evaluate stage)"]
