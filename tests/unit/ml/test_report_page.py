"""The model report's page: every section, its numbers, nothing fetched (ml.report.page), and the
approval request's link to it (ml.notify)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ml.metrics import OVERALL
from ml.notify import ReportReference, approval_request
from ml.report import compute
from ml.report.content import ModelReport, Monotone, PolicyOutcome
from ml.report.page import render
from tests.support.report_page import SECTIONS, Page

GROUPS = ("Asian", "Black", "White")
RULES = {"max_fpr_gap": 0.05, "fpr_gap_min_repaid": 300.0, "fpr_ci_alpha": 0.05,
         "cost_false_negative": 5.0, "cost_false_positive": 1.0}


def _metrics(role: str, version: str, policy: str, fprs: tuple[float, ...]) -> pd.DataFrame:
    rows = [{"candidate_version": "5", "model_version": version, "role": role, "policy": policy,
             "is_deployed_policy": policy == "group_thresholds", "method": "self_reported", "group_name": group,
             "n": 1000, "defaults": 100, "repaid": 900, "repaid_effective": 900, "auc": 0.81, "fpr": fpr,
             "fpr_ci_low": fpr - 0.02, "fpr_ci_high": fpr + 0.02,
             "tpr": 0.63, "positive_rate": 0.3, "cost": 400.0, "cost_per_applicant": 0.4, "calibration_error": 0.012,
             "threshold": 0.2, "evaluated_at": pd.Timestamp("2026-12-04 10:00")}
            for group, fpr in zip((*GROUPS, OVERALL), (*fprs, float(np.mean(fprs))), strict=True)]
    return compute.with_tpr_intervals(pd.DataFrame(rows), alpha=0.05)


def make_report(**changes: Any) -> ModelReport:
    groups = pd.concat([_metrics("candidate", "5", "group_thresholds", (0.2011, 0.2102, 0.1987)),
                        _metrics("candidate", "5", "single_threshold", (0.1457, 0.3613, 0.1852))])
    curves = pd.DataFrame({"policy": ["group_thresholds"] * 3 + ["single_threshold"] * 3,
                           "target_fpr": [0.1, 0.2, 0.3] * 2, "cost_per_applicant": [0.5, 0.41, 0.45, 0.49, 0.4, 0.44],
                           "flagged_rate": [0.2, 0.29, 0.38] * 2, "fpr_gap": [0.001, 0.002, 0.001, 0.2, 0.21, 0.2],
                           "is_chosen": [False, True, False, False, True, False]})
    rng = np.random.default_rng(1)
    p = rng.uniform(size=500)
    y = (rng.uniform(size=500) < p).astype(int)
    report = ModelReport(
        version="5", run_id="abc123", model="logreg_c1", family="logistic_regression",
        evaluated_at="2026-12-04 10:00:00", deployed_policy="group_thresholds", rules=RULES,
        policies=[
            PolicyOutcome("group_thresholds", True, 2651.0, 0.4429, 0.0115, 0.2286, 0.657, 0.2904, 0.8132, 0.0132),
            PolicyOutcome("single_threshold", False, 2540.0, 0.4244, 0.2156, 0.2275, 0.6813, 0.2929, 0.8132, 0.0132),
        ],
        groups=groups[groups["group_name"] != OVERALL].reset_index(drop=True),
        champion_version="4", champion=_metrics("champion", "4", "group_thresholds", (0.2, 0.25, 0.21)),
        checks=pd.DataFrame({"check_name": ["auc", "fpr_gap"], "subject": ["all applicants", "groups"],
                             "measured_value": [0.8132, 0.0115], "limit_value": [0.7, 0.05], "passed": [True, True]}),
        thresholds=pd.DataFrame({"group_name": ["Asian", "__default__"], "policy": ["group_thresholds"] * 2,
                                 "threshold": [0.1213, 0.1605], "is_fallback": [False, True],
                                 "target_fpr": [0.219] * 2}),
        cost_curves=curves, test_rows=500, roc=compute.roc_points(y, p), champion_roc=compute.roc_points(y, p ** 2),
        calibration=compute.calibration_points(y, p),
        coefficients=[compute.Importance("credit_score", -0.6312), compute.Importance("purpose_car", 0.1021)],
        permutation=[compute.Importance("credit_score", 0.0812, 0.004),
                     compute.Importance("loan_amount", 0.0101, 0.002)],
        monotone=Monotone({}, None), agreement=compute.agreement(p > 0.5, p > 0.6),
    )
    return dataclasses.replace(report, **changes)


def test_every_section_is_there_with_its_numbers() -> None:
    page = Page(render(make_report()))
    assert list(page.sections) == SECTIONS
    policies = page.sections["policies"]
    for number in ("0.4429", "0.4244", "0.0115", "0.2156", "0.8132", "2,651", "limit 0.0500"):
        assert number in policies, number
    groups = page.sections["groups"]
    for number in ("0.2011", "0.3613", "0.1811 – 0.2211"):  # FPRs and an FPR interval from eval_metrics
        assert number in groups, number
    tpr = compute.rate_interval(63, 100, 0.05)
    assert f"{tpr[0]:.4f} – {tpr[1]:.4f}" in groups  # the TPR's exact interval, computed
    assert "0.4100" in page.sections["cost-curve"]  # the chosen point
    assert "-0.6312" in page.sections["importance"]
    assert "0.0812" in page.sections["importance"]
    champion = page.sections["champion"]
    assert "champion 4" in champion
    assert "0.2500" in champion  # the champion's own per-group FPR (Black), on the same test rows
    assert "change" in champion


def test_the_page_fetches_nothing_and_runs_nothing() -> None:
    page = Page(render(make_report()))
    assert page.fetching == []
    assert "script" not in page.tags
    assert "link" not in page.tags
    assert page.tags.count("svg") == 6  # group rates, cost curve, ROC, calibration, coefficients, permutation


def test_only_a_linear_model_shows_coefficients() -> None:
    page = Page(render(make_report(coefficients=None, model="hgb_depth3", family="hist_gradient_boosting")))
    assert page.tags.count("svg") == 5
    assert "Permutation importance" in page.sections["importance"]
    assert "coefficients" not in page.sections["importance"]


def test_monotone_checks_none_declared_declared_unchecked_and_checked() -> None:
    none = Page(render(make_report())).sections["monotone"]
    assert "none declared" in none
    unchecked = make_report(monotone=Monotone({"credit_score": "decreasing"}, None))
    text = Page(render(unchecked)).sections["monotone"]
    assert "credit_score" in text
    assert "decreasing" in text
    assert "no grid-sweep result" in text
    results = pd.DataFrame({"model_version": ["5", "5"], "feature": ["credit_score", "debt_to_income"],
                            "direction": ["decreasing", "increasing"], "violations": [0, 3], "passed": [True, False]})
    checked = make_report(monotone=Monotone({"credit_score": "decreasing", "debt_to_income": "increasing"}, results))
    text = Page(render(checked)).sections["monotone"]
    assert "1 of 2 checks hold" in text
    assert "debt_to_income" in text
    assert checked.summary()["monotone"] == "1 of 2 checks hold (2 declared)"


def test_no_champion_and_a_changed_test_split_are_said() -> None:
    report = make_report(champion_version=None, champion=pd.DataFrame(), champion_roc=None, agreement=None,
                         warnings=["the published test split (9 rows) is not the one this version was evaluated on"])
    html = render(report)
    assert "first production model" in Page(html).sections["champion"]
    assert "is not the one this version was evaluated on" in html
    assert report.summary()["champion"] is None


def test_the_summary_is_strict_json() -> None:
    summary = make_report().summary()
    json.dumps(summary, allow_nan=False)
    assert [p["policy"] for p in summary["policies"]] == ["group_thresholds", "single_threshold"]
    assert summary["champion"]["version"] == "4"
    assert summary["champion"]["changed_decisions"] == pytest.approx(make_report().agreement.changed_share)
    assert summary["top_features"] == ["credit_score", "loan_amount"]


def test_the_approval_request_links_the_report_with_its_highlights() -> None:
    report = make_report()
    reference = ReportReference("/srv/lendguard/reports/model-5.html",
                                "file:///srv/mlflow/artifacts/1/abc123/artifacts/report/model-5.html",
                                report.highlights())
    message = approval_request(
        model_name="lendguard", version="5", run_id="abc123", run_url="sqlite:///m.db (run abc123)",
        dev_api_url="http://127.0.0.1:8001", gate_passed=True, gate_tests=[("auc", 0.81, 0.7)], auc=0.81,
        cost_per_applicant=0.4429, calibration_error=0.0132,
        fpr_by_policy={"group_thresholds": {"Asian": 0.2}, "single_threshold": {"Asian": 0.15}},
        cost_by_policy={"group_thresholds": 0.4429, "single_threshold": 0.4244}, champion_cost_per_applicant=0.45,
        report=reference,
    )
    assert message.payload["report"] == {"path": reference.path, "artifact_uri": reference.artifact_uri,
                                         "highlights": report.highlights()}
    assert f"file             {reference.path}" in message.text
    assert reference.artifact_uri in message.text
    assert "most important inputs (drop in test AUC when shuffled): credit_score 0.0812, loan_amount 0.0101" \
        in message.text
    assert "monotone directions: none declared" in message.text
    assert "against champion 4:" in message.text
