"""The dev tests' verdict (pure): each unmet requirement is one problem that says what was measured
and what was required; met requirements are none."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from ml.delivery.dev_tests import DevTestAnswers, DevTestCases, judge
from warehouse.loan_book import simulated_schema

LOANS = ("L1", "L2", "L3")
EXPECTED = np.array([0.1, 0.5, 0.9])


def cases() -> DevTestCases:
    return DevTestCases("7", simulated_schema(), pa.table({"loan_id": list(LOANS)}), LOANS, EXPECTED)


def measured(**changes: Any) -> DevTestAnswers:
    answers = {loan: {"probability": float(p), "model_version": "7"} for loan, p in zip(LOANS, EXPECTED, strict=True)}
    values: dict[str, Any] = {"requests": 3, "ok": 3, "failures": [], "latency_ms_p50": 4.0, "latency_ms_p99": 9.5,
                              "seconds": 0.5, "answers": answers, "invalid_request_status": 422}
    return DevTestAnswers(**{**values, **changes})


def test_every_requirement_met_is_no_problem() -> None:
    report = judge(cases(), measured(), max_p99_ms=250)
    assert report.passed
    assert report.details == {"requests": 3, "ok": 3, "max_probability_difference": 0.0, "p50_ms": 4.0,
                              "p99_ms": 9.5, "p99_limit_ms": 250, "throughput_per_s": 6.0,
                              "invalid_request_status": 422}


def test_a_latency_limit_it_cannot_meet_is_named() -> None:
    report = judge(cases(), measured(), max_p99_ms=0.001)
    assert report.problems == ["p99 latency 9.5 ms exceeds the requirement of 0.001 ms"]


def test_each_unmet_requirement_is_one_problem() -> None:
    answers = {"L1": {"probability": 0.1, "model_version": "7"},
               "L2": {"probability": 0.5 + 1e-6, "model_version": "6"}}
    report = judge(cases(), measured(ok=2, failures=["L3: HTTP 503"], answers=answers, invalid_request_status=200),
                   max_p99_ms=250)
    assert report.problems == [
        "1 of 3 requests failed: ['L3: HTTP 503']",
        "served probabilities differ from the registered model's by up to 1e-06",
        "the dev API served versions ['6', '7'], expected 7",
        "an invalid application got HTTP 200, expected 400/422",
    ]


def test_no_answer_at_all_is_not_a_pass() -> None:
    report = judge(cases(), measured(ok=0, answers={}), max_p99_ms=250)
    assert "served probabilities differ from the registered model's by up to nan" in report.problems
