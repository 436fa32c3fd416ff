"""Bring your own loan book: ``lendguard import FILE --schema FILE.yml``.

The file is checked against its declared contract in DuckDB (streaming, so a large book needs no
large memory) before anything is written; every problem found is reported with the column it is
in. Only a file that passes is landed, as a new loan-book snapshot renamed into place whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import yaml

from warehouse import landing
from warehouse.errors import LendguardError
from warehouse.loan_book import LoanBookSchema, simulated_schema
from warehouse.paths import Paths


class ImportRejectedError(LendguardError):
    """The file does not match its contract; ``problems`` names each column and what is wrong."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.problems = problems
        listed = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{path} does not match its loan-book schema; nothing was landed:\n{listed}")


@dataclass(frozen=True)
class ImportResult:
    snapshot_id: str
    rows: int


def _quote(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _source_sql(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        # All text, so a bad value is reported by the checks below rather than guessed around.
        return f"read_csv({_quote(path)}, header = true, all_varchar = true)"
    if suffix in {".parquet", ".pq"}:
        return f"read_parquet({_quote(path)})"
    raise ImportRejectedError(path, [f"file type {suffix or '(none)'!r} is not supported: use .csv or .parquet"])


def _blank_to_null(column: str) -> str:
    return f"nullif(trim(cast({column} as varchar)), '')"


def _date_expr(column: str) -> str:
    text = _blank_to_null(column)
    return f"coalesce(try_cast({text} as date), cast(try_cast({text} as timestamp) as date))"


def _checks(schema: LoanBookSchema) -> list[tuple[str, str, str]]:
    """(column, problem, SQL condition that marks an offending row)."""
    checks: list[tuple[str, str, str]] = []
    id_text = _blank_to_null(schema.id_column)
    checks.append((schema.id_column, "is empty", f"{id_text} is null"))
    date_text = _blank_to_null(schema.date_column)
    checks.append((schema.date_column, "is empty", f"{date_text} is null"))
    not_a_date = f"{date_text} is not null and {_date_expr(schema.date_column)} is null"
    checks.append((schema.date_column, "is not a date", not_a_date))
    group_text = _blank_to_null(schema.group_column)
    if schema.group_not_provided is None:
        checks.append((schema.group_column, "is empty (declare `not_provided` to allow it)", f"{group_text} is null"))
    if schema.group_values is not None:
        allowed = ", ".join(_quote(v) for v in schema.group_values)
        checks.append((schema.group_column, f"has a value outside {list(schema.group_values)}",
                       f"{group_text} is not null and {group_text} not in ({allowed})"))
    outcomes = ", ".join(_quote(v) for v in (*schema.outcome_positive, *schema.outcome_negative))
    outcome_text = _blank_to_null(schema.outcome_column)
    checks.append((schema.outcome_column,
                   f"has a value outside {[*schema.outcome_positive, *schema.outcome_negative]}",
                   f"{outcome_text} is null or {outcome_text} not in ({outcomes})"))
    for feature in schema.numeric_features:
        text = _blank_to_null(feature.name)
        number = f"try_cast({text} as double)"
        if not feature.nullable:
            checks.append((feature.name, "is empty", f"{text} is null"))
        checks.append((feature.name, "is not a number", f"{text} is not null and {number} is null"))
        if feature.min is not None:
            checks.append((feature.name, f"is below the minimum {feature.min:g}", f"{number} < {feature.min}"))
        if feature.max is not None:
            checks.append((feature.name, f"is above the maximum {feature.max:g}", f"{number} > {feature.max}"))
        if feature.allowed is not None:
            allowed = ", ".join(str(v) for v in feature.allowed)
            checks.append((feature.name, f"is not one of {list(feature.allowed)}", f"{number} not in ({allowed})"))
        if feature.integer:
            checks.append((feature.name, "is not a whole number", f"{number} <> round({number})"))
    for category in schema.categorical_features:
        text = _blank_to_null(category.name)
        if not category.nullable:
            checks.append((category.name, "is empty", f"{text} is null"))
        if category.values is not None:
            allowed = ", ".join(_quote(v) for v in category.values)
            checks.append((category.name, f"has a value outside {list(category.values)}",
                           f"{text} is not null and {text} not in ({allowed})"))
    return checks


def _typed_select(schema: LoanBookSchema) -> str:
    group = _blank_to_null(schema.group_column)
    if schema.group_not_provided is not None:
        group = f"coalesce({group}, {_quote(schema.group_not_provided)})"
    columns = [
        f"{_blank_to_null(schema.id_column)} as {schema.id_column}",
        f"{_date_expr(schema.date_column)} as {schema.date_column}",
        f"{group} as {schema.group_column}",
        f"{_blank_to_null(schema.outcome_column)} as {schema.outcome_column}",
        *(f"try_cast({_blank_to_null(f.name)} as double) as {f.name}" for f in schema.numeric_features),
        *(f"{_blank_to_null(f.name)} as {f.name}" for f in schema.categorical_features),
    ]
    return "select\n  " + ",\n  ".join(columns) + "\nfrom source"


def validate(con: duckdb.DuckDBPyConnection, path: Path, schema: LoanBookSchema) -> int:
    """Check the file against ``schema``; return its row count or raise :class:`ImportRejectedError`."""
    source = _source_sql(path)
    try:
        present = {row[0] for row in con.execute(f"describe select * from {source}").fetchall()}
    except duckdb.Error as exc:
        raise ImportRejectedError(path, [f"cannot be read: {exc}"]) from exc
    declared = [schema.id_column, schema.date_column, schema.group_column, schema.outcome_column, *schema.input_names]
    missing = [name for name in declared if name not in present]
    if missing:
        raise ImportRejectedError(path, [f"column {name!r} is missing" for name in missing])
    checks = _checks(schema)
    aggregates = ",\n  ".join(
        f"count(*) filter (where {condition}), any_value(cast({column} as varchar)) filter (where {condition})"
        for column, _, condition in checks
    )
    row = con.execute(
        f"with source as (select * from {source}) "
        f"select count(*), count(distinct {_blank_to_null(schema.id_column)}), {aggregates} from source"
    ).fetchone()
    assert row is not None
    rows, distinct_ids, *found = row
    problems = []
    if rows == 0:
        problems.append("the file has no rows")
    duplicates = rows - distinct_ids - found[0]  # found[0]: rows with an empty id
    if duplicates > 0:
        problems.append(f"column {schema.id_column!r}: {duplicates} duplicate loan ids")
    for index, (column, problem, _) in enumerate(checks):
        count, example = found[2 * index], found[2 * index + 1]
        if count:
            shown = "" if example is None else f" (e.g. {example!r})"
            problems.append(f"column {column!r} {problem}: {count} row{'s' if count > 1 else ''}{shown}")
    if problems:
        raise ImportRejectedError(path, problems)
    return int(rows)


def import_loan_book(paths: Paths, file: Path, schema_file: Path) -> ImportResult:
    """Validate ``file`` against ``schema_file`` and land it as the current loan book."""
    schema = LoanBookSchema.from_yaml(schema_file)
    if not file.exists():
        raise ImportRejectedError(file, ["no such file"])
    with duckdb.connect() as con:
        rows = validate(con, file, schema)

        def write_parts(directory: Path) -> None:
            target = directory / "part-00000.parquet"
            con.execute(
                f"copy (with source as (select * from {_source_sql(file)}) {_typed_select(schema)}) "
                f"to {_quote(target)} (format parquet, compression zstd)"
            )

        snapshot_id = landing.write_snapshot(paths.landing, landing.LOANS, write_parts, contract_sidecar(schema))
    return ImportResult(snapshot_id, rows)


def contract_sidecar(schema: LoanBookSchema) -> dict[str, str]:
    """The contract file landed beside a loan-book snapshot."""
    return {landing.SNAPSHOT_SCHEMA_FILE: yaml.safe_dump(schema.to_dict(), sort_keys=False)}


def land_simulated(paths: Paths, n: int, seed: int) -> ImportResult:
    """Simulate ``n`` loans (streamed block by block) and land them as the current loan book."""
    from warehouse.simulator import simulate_loans  # noqa: PLC0415 - start-up cost: scipy (about 0.4 s), not for `lendguard import`

    if n <= 0:
        raise ValueError(f"the number of loans must be positive, got {n}")
    snapshot_id = landing.write_snapshot(
        paths.landing, landing.LOANS, landing.write_table_parts(simulate_loans(n, seed)),
        contract_sidecar(simulated_schema()),
    )
    return ImportResult(snapshot_id, n)
