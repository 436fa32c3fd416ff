"""Stage ``test-dev``: integration tests and the latency requirement against the dev API.

Consumes the candidate version (its registered model) and the first ``dev_test_requests``
applications of the ``test`` split, as they were landed; the requests themselves are sent by the
caller (``lendguard.pipeline``, which runs the dev API), who hands back what it measured. Produces
a report: every answer 200, probabilities equal to the registered model's within 1e-9, only the
candidate serving, an invalid body refused with 400/422, p99 latency within the limit
(``dev_max_p99_ms`` in ``dbt_project.yml`` unless the caller sets another).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from ml import registry
from ml.train import load_split
from warehouse.loan_book import LoanBookSchema
from warehouse.marts import open_marts
from warehouse.paths import Paths
from warehouse.project import project_vars

MAX_PROBABILITY_DIFFERENCE = 1e-9
REFUSED_STATUSES = (400, 422)


@dataclass(frozen=True)
class DevTestCases:
    """The applications to send and what the registered model says about each."""

    version: str
    loan_book: LoanBookSchema
    applications: pa.Table
    """Landed rows: ``loan_id``, the group column and the contract's inputs, in loan-id order."""
    loan_ids: tuple[str, ...]
    expected: np.ndarray
    """The registered model's probability for each of ``loan_ids``."""

    def invalid_body(self) -> dict[str, Any]:
        """A body the API must refuse: a number that is not one."""
        return {self.loan_book.input_names[0]: "not a number"}


@dataclass(frozen=True)
class DevTestAnswers:
    """What the caller measured sending the cases to the dev API."""

    requests: int
    ok: int
    failures: list[str]
    latency_ms_p50: float
    latency_ms_p99: float
    seconds: float
    answers: dict[str, dict[str, Any]]
    """Each answered body by application id (the loan id)."""
    invalid_request_status: int


@dataclass(frozen=True)
class DevTestReport:
    details: dict[str, Any]
    problems: list[str]

    @property
    def passed(self) -> bool:
        return not self.problems


def default_requests() -> int:
    return int(project_vars()["dev_test_requests"])


def default_max_p99_ms() -> float:
    return float(project_vars()["dev_max_p99_ms"])


def load_cases(paths: Paths, version: str, requests: int) -> DevTestCases:
    """The first ``requests`` test-split applications, raw as landed, and the registered model's answers."""
    bundle = registry.load_version(paths, version)
    loan_book = bundle.loan_book
    test = load_split(paths, loan_book, "test").head(requests)
    group = [f"fairness_group as {column}" for column in loan_book.group_columns]
    columns = ", ".join(["loan_id", *group, *loan_book.input_names])
    with open_marts(paths) as marts:
        raw = marts.arrow(f"select {columns} from stg_landing__loans where list_contains(?, loan_id) order by loan_id",
                          [[str(loan_id) for loan_id in test["loan_id"]]])
    expected = bundle.pipeline.predict_proba(test[list(loan_book.feature_names)])[:, 1]
    return DevTestCases(version, loan_book, raw, tuple(str(i) for i in test["loan_id"]), expected)


def judge(cases: DevTestCases, measured: DevTestAnswers, *, max_p99_ms: float) -> DevTestReport:
    """Every requirement checked against what was measured; each unmet one is a problem."""
    problems = []
    if measured.ok != measured.requests:
        problems.append(f"{measured.requests - measured.ok} of {measured.requests} requests failed: "
                        f"{measured.failures[:3]}")
    served = np.array([measured.answers.get(i, {}).get("probability", np.nan) for i in cases.loan_ids])
    max_difference = float(np.nanmax(np.abs(served - cases.expected))) if measured.answers else float("nan")
    if not max_difference <= MAX_PROBABILITY_DIFFERENCE:
        problems.append(f"served probabilities differ from the registered model's by up to {max_difference:.3g}")
    versions = {a.get("model_version") for a in measured.answers.values()}
    if versions != {cases.version}:
        problems.append(f"the dev API served versions {sorted(map(str, versions))}, expected {cases.version}")
    if measured.invalid_request_status not in REFUSED_STATUSES:
        problems.append(f"an invalid application got HTTP {measured.invalid_request_status}, expected 400/422")
    if measured.latency_ms_p99 > max_p99_ms:
        problems.append(f"p99 latency {measured.latency_ms_p99:.1f} ms exceeds the requirement of "
                        f"{max_p99_ms:g} ms")
    details = {"requests": measured.requests, "ok": measured.ok, "max_probability_difference": max_difference,
               "p50_ms": measured.latency_ms_p50, "p99_ms": measured.latency_ms_p99, "p99_limit_ms": max_p99_ms,
               "throughput_per_s": measured.requests / max(measured.seconds, 1e-9),
               "invalid_request_status": measured.invalid_request_status}
    return DevTestReport(details, problems)
