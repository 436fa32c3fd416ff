"""dbt in this process: a manifest parsed once per set of inputs, each invocation's own environment,
dbt's failures as exit codes and clear errors. Compiles only (an in-memory database), no build."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.deployment import paths_for
from warehouse.dbt import DbtError, compile_inline, run_dbt
from warehouse.loan_book import simulated_schema
from warehouse.paths import Paths
from warehouse.settings import variable

VARS = {"loan_book": simulated_schema().dbt_var()}


def compile_sql(paths: Paths, sql: str, dbt_vars: dict[str, object] = VARS) -> tuple[str, bool]:
    """``sql`` compiled against an in-memory database; and whether the invocation parsed the project."""
    run = run_dbt(paths, ["compile", "--inline", sql], dbt_vars, target_path=paths.data_dir / "compile",
                  env_overrides={variable("paths.warehouse"): ":memory:"})
    assert run.returncode == 0, run.output
    return run.compiled[0], run.timing.parsed


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    return paths_for(tmp_path)


def test_the_same_inputs_reuse_the_manifest_and_other_vars_parse_again(paths: Paths) -> None:
    assert compile_sql(paths, "select 1 as one") == ("select 1 as one", True)
    assert compile_sql(paths, "select 2 as two") == ("select 2 as two", False)
    # A var can be rendered into node configs at parse time: other vars, another parse.
    assert compile_sql(paths, "select 3 as three", {**VARS, "gate_version": "7"}) == ("select 3 as three", True)
    assert compile_sql(paths, "select 4 as four")[1] is False


def test_each_invocation_sees_its_own_deployment_and_the_process_environment_is_untouched(
    paths: Paths, tmp_path: Path
) -> None:
    before = dict(os.environ)
    other = paths_for(tmp_path / "other")
    landing = "select '{{ env_var(\"" + variable("paths.landing") + "\") }}' as landing"
    assert compile_sql(paths, landing)[0] == f"select '{paths.landing}' as landing"
    assert compile_sql(other, landing)[0] == f"select '{other.landing}' as landing"
    assert dict(os.environ) == before


def test_the_feature_macro_compiles_the_same_twice(paths: Paths) -> None:
    sql = "select {{ loan_feature_columns() }} from application_rows"
    first = compile_inline(paths, sql, VARS)
    assert "as loan_to_income" in first
    assert compile_inline(paths, sql, VARS) == first


def test_a_compile_error_is_a_dbt_error_naming_the_problem(paths: Paths) -> None:
    with pytest.raises(DbtError, match="no_such_macro"):
        compile_inline(paths, "select {{ no_such_macro() }}", VARS)


def test_a_command_dbt_cannot_run_exits_2_with_the_reason(paths: Paths) -> None:
    run = run_dbt(paths, ["compile", "--no-such-option"], VARS)
    assert run.returncode == 2
    assert "no-such-option" in run.output
