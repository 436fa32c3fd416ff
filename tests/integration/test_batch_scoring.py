"""In-warehouse batch scoring runs the champion's compiled SQL and agrees with the model and the API."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from litestar.testing import TestClient

from api.app import create_app
from api.routes.score import SCORE_PATH
from ml import registry
from ml.delivery.deploy_prod import CHAMPION_SQL_DIALECTS, write_champion_macros
from ml.train import load_split
from warehouse.build import dbt_vars
from warehouse.dbt import run_dbt
from warehouse.loan_book import simulated_schema
from warehouse.paths import Paths
from warehouse.publish import connect_snapshot
from warehouse.settings import ApiSettings, variable

pytestmark = pytest.mark.slow


def test_the_warehouse_rescores_the_loan_book_with_the_champion(trained_deployment: Paths) -> None:
    """``score_loan_decisions`` as the fixture's build after the approval made it."""
    bundle = registry.load_bundle(trained_deployment, "champion")
    with connect_snapshot(trained_deployment) as con:
        scored = con.execute("select * from score_loan_decisions order by loan_id").df()
    book = pd.concat([load_split(trained_deployment, bundle.loan_book, s) for s in ("train", "validation", "test")])
    book = book.sort_values("loan_id").reset_index(drop=True)
    assert scored["loan_id"].tolist() == book["loan_id"].tolist(), "every loan, once"
    assert set(scored["model_version"]) == {bundle.version}, "every row names the version that scored it"
    expected = bundle.pipeline.predict_proba(book[list(bundle.loan_book.feature_names)])[:, 1]
    np.testing.assert_allclose(scored["probability"].to_numpy(), expected, rtol=0, atol=1e-9)
    thresholds = np.array([bundle.threshold_for(g) for g in scored["fairness_group"]])
    np.testing.assert_array_equal(scored["threshold"].to_numpy(), thresholds)
    flagged = scored["probability"].to_numpy() >= thresholds
    assert (scored["decision"] == np.where(flagged, "manual_review", "auto_approve")).all()


HALF = dict.fromkeys(CHAMPION_SQL_DIALECTS, "select loan_id, fairness_group, 0.5 as probability from model_features")
"""A champion's query as install_champion_sql writes it, without training one."""
UNSCORED = "where false"
"""What score_loans compiles to before any champion: the empty table."""


def compiled_score_loans(paths: Paths) -> str:
    """``score_loans`` as a build of ``paths`` would run it now (compiled in this process, against an
    in-memory database: no warehouse needed)."""
    run = run_dbt(paths, ["compile", "--select", "score_loans"], dbt_vars(simulated_schema()),
                  target_path=paths.data_dir / "compile", env_overrides={variable("paths.warehouse"): ":memory:"})
    assert run.returncode == 0, run.output
    compiled = {result["unique_id"]: sql for result, sql in zip(run.results, run.compiled, strict=True)}
    return compiled["model.lendguard.score_loans"]  # beside its tests, which the selection takes too


def test_a_promotion_between_two_builds_of_one_process_changes_what_the_second_scores_with(paths: Paths) -> None:
    """The shared deployment's case: build, promote, build again in one process (the pipeline, the
    demo, a CI job). The second build must not run on the manifest the first parsed."""
    assert UNSCORED in compiled_score_loans(paths), "no champion yet"
    for version in ("7", "8"):  # the same size and perhaps the same mtime: only the contents differ
        write_champion_macros(paths, version, HALF)
        sql = compiled_score_loans(paths)
        assert f"'{version}' as model_version" in sql
        assert UNSCORED not in sql


def test_a_build_reads_the_champion_of_the_state_directory_its_paths_name(paths: Paths, tmp_path: Path) -> None:
    """A deployment whose state directory is not DATA_DIR/state (tests and tools move it)."""
    moved = dataclasses.replace(paths, state_dir=tmp_path / "state-elsewhere")
    write_champion_macros(moved, "7", HALF)
    assert "'7' as model_version" in compiled_score_loans(moved)
    assert UNSCORED in compiled_score_loans(paths), "the data directory's own state has no champion"


def test_online_and_batch_scoring_agree_on_the_same_applications(
    trained_deployment: Paths, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The API (feature macro + model SQL, per request) and ``score_loans`` (the same, over
    feat_loans) give the same probability and decision for the same loans."""
    bundle = registry.load_bundle(trained_deployment, "champion")
    book = bundle.loan_book
    with connect_snapshot(trained_deployment) as con:
        scored = con.execute("select * from score_loan_decisions order by loan_id limit 150").df()
        assert len(scored) == 150, "the champion scored the book (an empty table would compare nothing)"
        loans = con.execute(
            "select * from stg_landing__loans where loan_id in (select loan_id from scored)"
        ).df().set_index("loan_id")
    api_paths = dataclasses.replace(trained_deployment, landing=tmp_path_factory.mktemp("agree") / "landing")
    with TestClient(create_app(ApiSettings(writer_id="agree"), api_paths)) as client:
        for row in scored.itertuples():
            loan = loans.loc[row.loan_id]
            body = {name: _json_value(loan[name]) for name in book.input_names}
            whole = [f.name for f in book.numeric_features if f.integer and body[f.name] is not None]
            body.update({name: int(body[name]) for name in whole})
            body[book.group_column] = row.fairness_group
            answer = client.post(SCORE_PATH, json=body)
            assert answer.status_code == 200, answer.text
            online = answer.json()
            assert online["probability"] == pytest.approx(row.probability, rel=0, abs=1e-12), row.loan_id
            assert (online["threshold"], online["decision"]) == (row.threshold, row.decision), row.loan_id


def _json_value(value: object) -> object:
    """A loan-book cell as a client would send it (missing numbers left out as null)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    return value.item() if isinstance(value, np.generic) else value
