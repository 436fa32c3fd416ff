"""Bring your own loan book: ``lendguard import FILE --schema FILE.yml``.

The file is checked against its declared contract in DuckDB (streaming, so a large book needs no
large memory) before anything is written; every problem found is reported with the column it is
in. Only a file that passes is landed, as a new loan-book snapshot renamed into place whole.
"""

from __future__ import annotations

import gzip
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import yaml

from warehouse import landing
from warehouse.errors import ProblemsError
from warehouse.loan_book import FileFormat, LoanBookSchema, simulated_schema
from warehouse.paths import Paths
from warehouse.project import project_vars

if TYPE_CHECKING:
    from warehouse.simulator import CensusProxies


class ImportRejectedError(ProblemsError):
    """The file does not match its contract; ``problems`` names each column and what is wrong."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        super().__init__(f"{path} does not match its loan-book schema; nothing was landed", problems)


@dataclass(frozen=True)
class ImportResult:
    snapshot_id: str
    rows: int


CSV_SUFFIXES = (".csv", ".tsv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")
_SNIFF_BYTES = 64 * 1024
_COMPRESSED = {  # magic bytes -> (what it is, the DuckDB compression that reads it, or None: refused)
    b"\x1f\x8b": ("gzip-compressed", "gzip"),
    b"\x28\xb5\x2f\xfd": ("zstd-compressed", "zstd"),
    b"PK\x03\x04": ("a ZIP archive (an Excel .xlsx workbook is one)", None),
    b"BZh": ("bzip2-compressed", None),
    b"\xfd7zXZ\x00": ("xz-compressed", None),
    b"7z\xbc\xaf\x27\x1c": ("a 7-Zip archive", None),
    b"PAR1": ("a Parquet file", None),
}


def _quote(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _compression(path: Path, encoding: str) -> str:
    """How DuckDB must decompress ``path`` ('none', 'gzip', 'zstd'), or a one-line refusal of a file
    that is empty or not CSV text: DuckDB's own answer would be a 25-line sniffer report."""
    with path.open("rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    if not head:
        raise ImportRejectedError(path, ["the file is empty (0 bytes)"])
    compression = "none"
    for magic, (what, reader) in _COMPRESSED.items():
        if head.startswith(magic):
            if reader is None:
                fix = "rename it .parquet" if magic == b"PAR1" else "extract the CSV file and import that"
                raise ImportRejectedError(path, [f"the file is {what}, not CSV text: {fix}"])
            compression = reader
    if compression == "gzip":  # what DuckDB will read is the decompressed text: check that
        head = _gunzipped_head(path)
        if not head:
            raise ImportRejectedError(path, ["the file is gzip-compressed and holds nothing (0 bytes)"])
    nul = head.find(b"\x00")
    if encoding != "utf-16" and nul >= 0:
        raise ImportRejectedError(path, [
            f"the file is binary, not CSV text (a NUL byte at offset {nul:,}); "
            "if it is UTF-16 text, declare `file: {encoding: utf-16}`"
        ])
    return compression


def _gunzipped_head(path: Path) -> bytes:
    try:
        with gzip.open(path, "rb") as handle:
            return handle.read(_SNIFF_BYTES)
    except (OSError, EOFError) as exc:
        raise ImportRejectedError(path, [f"the file looks gzip-compressed but cannot be decompressed: {exc}"]) from exc


def _reader_sql(path: Path, file_format: FileFormat, rejects_table: str | None = None) -> str:
    """The table function reading ``path`` as written (no renaming, no typing).

    With ``rejects_table`` (CSV only), malformed lines are skipped into that table instead of
    stopping the scan at the first, so every one can be listed.
    """
    suffixes = [suffix.lower() for suffix in path.suffixes[-2:]]
    suffix = suffixes[-1] if suffixes else ""
    if suffix in {".gz", ".zst"} and len(suffixes) == 2:
        suffix = suffixes[0]
    if suffix in PARQUET_SUFFIXES:
        with path.open("rb") as handle:
            magic = handle.read(4)
        if not magic:
            raise ImportRejectedError(path, ["the file is empty (0 bytes)"])
        if magic != b"PAR1":
            raise ImportRejectedError(path, ["the file is not Parquet (it does not start with PAR1): "
                                             "name a CSV file .csv"])
        return f"read_parquet({_quote(path)})"
    if suffix not in CSV_SUFFIXES:
        raise ImportRejectedError(path, [
            f"file type {suffix or '(none)'!r} is not supported: use .csv (optionally .csv.gz) or .parquet"])
    options = {
        "header": "true",
        # All text, so a bad value is reported by the checks below rather than guessed around.
        "all_varchar": "true",
        "encoding": _quote(file_format.duckdb_encoding),
        "compression": _quote(_compression(path, file_format.duckdb_encoding)),
    }
    if file_format.delimiter is not None:
        options["delim"] = _quote(file_format.delimiter)
    if file_format.quote is not None:
        options["quote"] = _quote(file_format.quote)
    if rejects_table is not None:
        options.update(store_rejects="true", rejects_table=_quote(rejects_table),
                       rejects_scan=_quote(f"{rejects_table}_scans"))
    return f"read_csv({_quote(path)}, " + ", ".join(f"{k} = {v}" for k, v in options.items()) + ")"


class _Columns:
    """SQL for each declared column, read the way the schema's :class:`FileFormat` says.

    The source relation keeps the contract's names (each selected from its header), so the checks
    and the typed select name contract columns; messages name the header too when it differs.
    """

    def __init__(self, schema: LoanBookSchema, text_columns: set[str]) -> None:
        self.schema = schema
        self.format = schema.file_format
        self.text_columns = text_columns
        """Contract columns whose source is text (every CSV column; Parquet's string columns)."""

    def label(self, column: str) -> str:
        header = self.format.header(column)
        return repr(column) if header == column else f"{header!r} ({column})"

    def source_select(self, reader: str) -> str:
        declared = self.schema.declared_columns
        selected = ", ".join(f"{_identifier(self.format.header(c))} as {c}" for c in declared)
        return f"select {selected} from {reader}"

    def text(self, column: str) -> str:
        """The trimmed value as text, NULL when empty or one of the declared missing values."""
        trimmed = f"trim(cast({column} as varchar))"
        missing = ", ".join(_quote(v) for v in ("", *self.format.missing))
        return f"(case when {trimmed} in ({missing}) then null else {trimmed} end)"

    def number(self, column: str) -> str:
        text = self.text(column)
        if column not in self.text_columns or not self.format.formatted_numbers:
            return f"try_cast({text} as double)"
        decimal, thousands = re.escape(self.format.decimal), self.format.thousands
        whole = r"\d+" if thousands is None else rf"(\d{{1,3}}({re.escape(thousands)}\d{{3}})+|\d+)"
        pattern = rf"[+-]?({whole}({decimal}\d*)?|{decimal}\d+)"
        plain = text if thousands is None else f"replace({text}, {_quote(thousands)}, '')"
        if self.format.decimal != ".":
            plain = f"replace({plain}, {_quote(self.format.decimal)}, '.')"
        return f"(case when regexp_full_match({text}, {_quote(pattern)}) then try_cast({plain} as double) end)"

    def date(self, column: str) -> str:
        text = self.text(column)
        if column in self.text_columns and self.format.date_format is not None:
            return f"cast(try_strptime({text}, {_quote(self.format.date_format)}) as date)"
        return f"coalesce(try_cast({text} as date), cast(try_cast({text} as timestamp) as date))"

    def checks(self) -> list[tuple[str, str, str]]:
        """(column, problem, SQL condition that marks an offending row)."""
        schema = self.schema
        checks: list[tuple[str, str, str]] = []
        checks.append((schema.id_column, "is empty", f"{self.text(schema.id_column)} is null"))
        date_text = self.text(schema.date_column)
        checks.append((schema.date_column, "is empty", f"{date_text} is null"))
        expected = (f"in the declared format {self.format.date_format!r}" if self.format.date_format
                    else "(a date in another format needs `format:` on the date column, e.g. '%m/%d/%Y')")
        checks.append((schema.date_column, f"is not a date {expected}",
                       f"{date_text} is not null and {self.date(schema.date_column)} is null"))
        if schema.group_column is not None:
            checks.extend(self._group_checks(schema.group_column))
        outcomes = ", ".join(_quote(v) for v in (*schema.outcome_positive, *schema.outcome_negative))
        outcome_text = self.text(schema.outcome_column)
        checks.append((schema.outcome_column,
                       f"has a value outside {[*schema.outcome_positive, *schema.outcome_negative]}",
                       f"{outcome_text} is null or {outcome_text} not in ({outcomes})"))
        not_a_number = "is not a number" + (
            f" (decimal {self.format.decimal!r}, thousands {self.format.thousands!r})"
            if self.format.formatted_numbers else "")
        for feature in schema.numeric_features:
            text, number = self.text(feature.name), self.number(feature.name)
            if not feature.nullable:
                checks.append((feature.name, "is empty", f"{text} is null"))
            checks.append((feature.name, not_a_number, f"{text} is not null and {number} is null"))
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
            text = self.text(category.name)
            if not category.nullable:
                checks.append((category.name, "is empty", f"{text} is null"))
            if category.values is not None:
                allowed = ", ".join(_quote(v) for v in category.values)
                checks.append((category.name, f"has a value outside {list(category.values)}",
                               f"{text} is not null and {text} not in ({allowed})"))
        return checks

    def _group_checks(self, column: str) -> list[tuple[str, str, str]]:
        schema, group_text = self.schema, self.text(column)
        checks = []
        if schema.group_not_provided is None:
            checks.append((column, "is empty (declare `not_provided` to allow it)", f"{group_text} is null"))
        if schema.group_values is not None:
            allowed = ", ".join(_quote(v) for v in schema.group_values)
            checks.append((column, f"has a value outside {list(schema.group_values)}",
                           f"{group_text} is not null and {group_text} not in ({allowed})"))
        return checks

    def typed_select(self) -> str:
        """The landed columns: roles and inputs typed; proxy columns (surname, area) passed through
        as text, an empty one missing (BISG then falls back as the method says)."""
        schema = self.schema
        columns = [
            f"{self.text(schema.id_column)} as {schema.id_column}",
            f"{self.date(schema.date_column)} as {schema.date_column}",
        ]
        if schema.group_column is not None:
            group = self.text(schema.group_column)
            if schema.group_not_provided is not None:
                group = f"coalesce({group}, {_quote(schema.group_not_provided)})"
            columns.append(f"{group} as {schema.group_column}")
        columns += [
            f"{self.text(schema.outcome_column)} as {schema.outcome_column}",
            *(f"{self.number(f.name)} as {f.name}" for f in schema.numeric_features),
            *(f"{self.text(f.name)} as {f.name}" for f in schema.categorical_features),
            *(f"{self.text(column)} as {column}" for column in schema.proxies.values()),
        ]
        return "select\n  " + ",\n  ".join(columns) + "\nfrom source"


@dataclass(frozen=True)
class _Plan:
    """How to read one file: its table function and the SQL of each declared column."""

    reader: str
    """Strict: stops at a malformed line, so nothing is ever skipped silently."""
    lenient_reader: str | None
    """CSV: skips malformed lines into ``rejects_table`` (for listing them); None for Parquet."""
    rejects_table: str
    columns: _Columns


def _first_line(exc: duckdb.Error) -> str:
    """DuckDB's message without its multi-line report of sniffer options the user cannot pass."""
    return str(exc).strip().splitlines()[0]


def _malformed_lines(con: duckdb.DuckDBPyConnection, plan: _Plan) -> list[str]:
    """One problem per kind of malformed CSV line (count and the first line number), from a scan
    that skips them into the plan's rejects table. A scan of its own: DuckDB fills that table
    from a plain scan, not reliably from the checks' many-aggregate query."""
    if plan.lenient_reader is None:
        return []
    con.execute(f"select count(*) from {plan.lenient_reader}").fetchall()
    exists = con.execute("select count(*) from duckdb_tables() where table_name = ?", [plan.rejects_table]).fetchone()
    if not exists or not exists[0]:  # DuckDB creates the table at the first malformed line
        return []
    rows = con.execute(
        "select error_type, count(distinct line), min(line), any_value(error_message) "
        f"from {plan.rejects_table} group by error_type order by min(line)"
    ).fetchall()
    problems = []
    for error_type, count, first_line, message in rows:
        what = ("are not valid text in the declared encoding (declare it: `file: {encoding: latin-1}`)"
                if error_type == "INVALID ENCODING" else f"cannot be read: {str(message).strip()}")
        problems.append(f"{count} line{'s' if count > 1 else ''} (first: line {first_line}) {what}")
    return problems


def _plan(con: duckdb.DuckDBPyConnection, path: Path, schema: LoanBookSchema) -> _Plan:
    """Refuse a file that cannot be read or lacks a declared column, in one line each."""
    file_format = schema.file_format
    reader = _reader_sql(path, file_format)
    rejects_table = f"import_rejects_{uuid.uuid4().hex}"  # its own, however often the connection is used
    lenient_reader = _reader_sql(path, file_format, rejects_table) if reader.startswith("read_csv") else None
    if file_format.date_format is not None:
        try:
            con.execute("select try_strptime('', ?)", [file_format.date_format])
        except duckdb.Error as exc:
            raise ImportRejectedError(path, [f"the date format {file_format.date_format!r} is not valid: "
                                             f"{_first_line(exc)}"]) from exc
    try:
        # The lenient reader: its sniffer tolerates malformed lines, which the checks then list.
        described = con.execute(
            f"select column_name, column_type from (describe select * from {lenient_reader or reader})")
        present = dict(described.fetchall())
    except duckdb.Error as exc:
        raise ImportRejectedError(path, [f"cannot be read: {_first_line(exc)}"]) from exc
    headers = {column: file_format.header(column) for column in schema.declared_columns}
    columns = _Columns(schema, {column for column, header in headers.items() if present.get(header) == "VARCHAR"})
    missing = [column for column, header in headers.items() if header not in present]
    if missing:
        raise ImportRejectedError(path, [f"column {columns.label(c)} is missing" for c in missing])
    return _Plan(reader, lenient_reader, rejects_table, columns)


def validate(con: duckdb.DuckDBPyConnection, path: Path, schema: LoanBookSchema) -> int:
    """Check the file against ``schema``; return its row count or raise :class:`ImportRejectedError`."""
    return _check(con, path, _plan(con, path, schema))


def _check(con: duckdb.DuckDBPyConnection, path: Path, plan: _Plan) -> int:
    """Every problem of the file's rows in one scan: counts and an example per column and problem."""
    columns, schema = plan.columns, plan.columns.schema
    problems = _malformed_lines(con, plan)
    # With malformed lines the file is refused anyway; the checks still list the others' problems.
    reader = plan.lenient_reader if problems and plan.lenient_reader else plan.reader
    checks = columns.checks()
    aggregates = ",\n  ".join(
        f"count(*) filter (where {condition}), any_value(cast({column} as varchar)) filter (where {condition})"
        for column, _, condition in checks
    )
    try:
        row = con.execute(
            f"with source as ({columns.source_select(reader)}) "
            f"select count(*), count(distinct {columns.text(schema.id_column)}), {aggregates} from source"
        ).fetchone()
    except duckdb.Error as exc:
        raise ImportRejectedError(path, [f"cannot be read: {_first_line(exc)}"]) from exc
    assert row is not None
    rows, distinct_ids, *found = row
    if rows == 0 and not problems:
        problems.append("the file has no rows")
    duplicates = rows - distinct_ids - found[0]  # found[0]: rows with an empty id
    if duplicates > 0:
        problems.append(f"column {columns.label(schema.id_column)}: {duplicates} duplicate loan ids")
    for index, (column, problem, _) in enumerate(checks):
        count, example = found[2 * index], found[2 * index + 1]
        if count:
            shown = "" if example is None else f" (e.g. {example!r})"
            problems.append(f"column {columns.label(column)} {problem}: {count} row{'s' if count > 1 else ''}{shown}")
    if problems:
        raise ImportRejectedError(path, problems)
    return int(rows)


def import_loan_book(paths: Paths, file: Path, schema_file: Path) -> ImportResult:
    """Validate ``file`` against ``schema_file`` and land it as the current loan book."""
    schema = LoanBookSchema.from_yaml(schema_file)
    if not file.exists():
        raise ImportRejectedError(file, ["no such file"])
    with duckdb.connect() as con:
        plan = _plan(con, file, schema)
        rows = _check(con, file, plan)

        def write_parts(directory: Path) -> None:
            target = directory / "part-00000.parquet"
            con.execute(
                f"copy (with source as ({plan.columns.source_select(plan.reader)}) {plan.columns.typed_select()}) "
                f"to {_quote(target)} (format parquet, compression zstd)"
            )

        snapshot_id = landing.write_snapshot(paths.landing, landing.LOANS, write_parts, contract_sidecar(schema))
    return ImportResult(snapshot_id, rows)


def contract_sidecar(schema: LoanBookSchema) -> dict[str, str]:
    """The contract file landed beside a loan-book snapshot."""
    return {landing.SNAPSHOT_SCHEMA_FILE: yaml.safe_dump(schema.contract().to_dict(), sort_keys=False)}


def land_simulated(
    paths: Paths, n: int, seed: int, *, proxies: bool = False, omit_group: bool = False, census: Path | None = None,
    same_profiles: bool = False,
) -> ImportResult:
    """Simulate ``n`` loans (streamed block by block) and land them as the current loan book.

    ``proxies``: each applicant also gets a surname and a ZCTA drawn from the Census tables (from
    ``census``, default the installed package's) given their group, mapped to the Census groups by
    the ``bisg_groups`` var; ``omit_group`` leaves the group column out (it needs ``proxies``);
    ``same_profiles`` draws every group with the same structural profile (``simulate_loans``).
    """
    from warehouse.simulator import simulate_loans  # noqa: PLC0415 - start-up cost: scipy (about 0.4 s), not for `lendguard import`

    if n <= 0:
        raise ValueError(f"the number of loans must be positive, got {n}")
    if omit_group and not proxies:
        raise ImportRejectedError(Path("simulated loan book"), [
            "--omit-group needs --proxies: a book without its group column needs surnames and areas for BISG"])
    tables = census_proxies(census) if proxies else None
    loans = simulate_loans(n, seed, proxies=tables, omit_group=omit_group, same_profiles=same_profiles)
    snapshot_id = landing.write_snapshot(
        paths.landing, landing.LOANS, landing.write_table_parts(loans),
        contract_sidecar(simulated_schema(proxies=proxies, omit_group=omit_group)),
    )
    return ImportResult(snapshot_id, n)


def census_proxies(source: Path | None = None) -> CensusProxies:
    """The simulator's Census sampling tables, from ``source`` or the installed package's files."""
    from warehouse.census import TABLES, packaged_source, read_table  # noqa: PLC0415 - only with --proxies
    from warehouse.simulator import CensusProxies  # noqa: PLC0415 - start-up cost, as in land_simulated

    folder = source or packaged_source()
    surnames, zctas = (read_table(folder / table.file_name, table) for table in TABLES)
    return CensusProxies.from_tables(surnames, zctas, project_vars()["bisg_groups"])
