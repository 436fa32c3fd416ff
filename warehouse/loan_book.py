"""The loan-book contract: which columns a loan book has and what each one means.

One declaration (a YAML file) drives everything downstream: import validation, the dbt staging and
feature SQL (passed to dbt as the ``loan_book`` var), the model's inputs, the API's request body and
monitoring. Nothing downstream names the simulator's columns; it names roles from this contract.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from warehouse.errors import LendguardError

SIMULATED_SCHEMA_PATH = Path(__file__).with_name("schemas") / "simulated_loans.yml"
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
RESERVED_NAMES = frozenset({
    # canonical names staging gives the role columns
    "loan_id", "application_date", "fairness_group", "defaulted", "snapshot_id", "split",
    # prediction-log meta columns (warehouse.prediction_log.META_FIELDS) and staging's event_at
    "request_id", "application_id", "received_at", "occurred_at", "event_at", "endpoint", "status_code", "error",
    "raw_body", "model_name", "model_version", "threshold", "probability", "decision", "mode", "latency_ms",
    "batch_id", "batch_index", "batch_size", "idempotency_key", "idempotency_fingerprint", "unknown_categories",
    "reason_codes", "caller", "log_note",
})
"""Names the warehouse gives its own columns; a loan-book feature may not take one of them."""


class LoanBookSchemaError(LendguardError):
    """The schema declaration itself is malformed."""


ENCODINGS = {"utf-8": "utf-8", "utf-16": "utf-16", "iso8859-1": "latin-1"}
"""Python's canonical codec name -> DuckDB's: the encodings DuckDB's CSV reader decodes without an
extension (an extension would need a download, and imports run offline)."""
DECIMAL_SEPARATORS = (".", ",")
THOUSANDS_SEPARATORS = (",", ".", " ", "'", "\u00a0")
FILE_KEYS = ("delimiter", "quote", "encoding", "decimal", "thousands", "missing")


@dataclass(frozen=True)
class FileFormat:
    """How a lender's export is written: header names, separators, encoding, date format.

    Only ``lendguard import`` reads it. It is not part of the contract: the landed snapshot has the
    contract's column names and typed values, so re-exporting with another delimiter or header
    spelling changes neither the fingerprint nor anything downstream.
    """

    headers: tuple[tuple[str, str], ...] = ()
    """(contract column, the file's header for it), for each column declared with ``source``."""
    date_format: str | None = None
    """strptime format of the date column's text (``%m/%d/%Y``); None: ISO dates or timestamps."""
    delimiter: str | None = None
    """None: detected from the file."""
    quote: str | None = None
    """None: detected from the file."""
    encoding: str = "utf-8"
    decimal: str = "."
    thousands: str | None = None
    missing: tuple[str, ...] = ()
    """Values read as missing, besides an empty field."""

    def header(self, column: str) -> str:
        """The file's header for contract ``column``."""
        return dict(self.headers).get(column, column)

    @property
    def formatted_numbers(self) -> bool:
        """Whether numbers in text need the separators declared here rather than plain SQL casting."""
        return self.decimal != "." or self.thousands is not None

    @classmethod
    def from_dict(cls, raw: Any, headers: tuple[tuple[str, str], ...], date_format: str | None) -> FileFormat:
        raw = {} if raw is None else raw
        if not isinstance(raw, dict):
            raise LoanBookSchemaError("`file` must be a mapping of " + ", ".join(FILE_KEYS))
        unknown = sorted(set(raw) - set(FILE_KEYS))
        if unknown:
            raise LoanBookSchemaError(f"`file` has unknown key(s) {unknown}; known: {list(FILE_KEYS)}")
        missing = raw.get("missing", [])
        if not isinstance(missing, list) or not all(isinstance(v, str | int | float) for v in missing):
            raise LoanBookSchemaError("`file.missing` must be a list of values, e.g. ['NA', 'n/a', '-']")
        thousands = raw.get("thousands")
        return cls(
            headers=headers, date_format=date_format,
            delimiter=_optional_text(raw.get("delimiter")), quote=_optional_text(raw.get("quote")),
            encoding=str(raw.get("encoding", "utf-8")), decimal=str(raw.get("decimal", ".")),
            thousands=None if thousands is None else str(thousands), missing=tuple(str(v) for v in missing),
        )

    def check(self) -> None:
        """Refuse a format the reader cannot follow, naming the key."""
        try:
            codec = codecs.lookup(self.encoding).name
        except LookupError:
            codec = self.encoding
        if codec not in ENCODINGS:
            raise LoanBookSchemaError(
                f"file.encoding {self.encoding!r} is not supported: use one of {sorted(ENCODINGS.values())} "
                "(convert the file first, e.g. `iconv -f cp1252 -t utf-8`)"
            )
        for key, value in (("delimiter", self.delimiter), ("quote", self.quote)):
            if value is not None and (len(value) != 1 or value in "\r\n"):
                raise LoanBookSchemaError(f"file.{key} must be one character, got {value!r}")
        if self.delimiter is not None and self.delimiter == self.quote:
            raise LoanBookSchemaError("file.delimiter and file.quote must differ")
        if self.decimal not in DECIMAL_SEPARATORS:
            raise LoanBookSchemaError(f"file.decimal must be one of {list(DECIMAL_SEPARATORS)}, got {self.decimal!r}")
        if self.thousands is not None and self.thousands not in THOUSANDS_SEPARATORS:
            raise LoanBookSchemaError(
                f"file.thousands must be one of {list(THOUSANDS_SEPARATORS)}, got {self.thousands!r}")
        if self.thousands == self.decimal:
            raise LoanBookSchemaError(f"file.decimal and file.thousands are both {self.decimal!r}")
        if self.date_format is not None and "%" not in self.date_format:
            raise LoanBookSchemaError(
                f"the date format {self.date_format!r} has no % field: write it as strptime does, e.g. '%m/%d/%Y'")
        if any(not header.strip() for _, header in self.headers):
            raise LoanBookSchemaError("a column's `source` header is empty")

    @property
    def duckdb_encoding(self) -> str:
        return ENCODINGS[codecs.lookup(self.encoding).name]

    def to_dict(self) -> dict[str, Any]:
        """The ``file`` mapping of the YAML form (defaults left out)."""
        entries: dict[str, Any] = {"delimiter": self.delimiter, "quote": self.quote,
                                   "encoding": None if self.encoding == "utf-8" else self.encoding,
                                   "decimal": None if self.decimal == "." else self.decimal,
                                   "thousands": self.thousands, "missing": list(self.missing) or None}
        return {k: v for k, v in entries.items() if v is not None}


INCREASING = "increasing"
DECREASING = "decreasing"
MONOTONE_DIRECTIONS = {INCREASING: 1, DECREASING: -1}
"""A feature's declared direction in *risk* (probability of default) and its sign, as scikit-learn's
``monotonic_cst`` writes it: risk may only rise with an ``increasing`` feature, only fall with a
``decreasing`` one, the other inputs held fixed."""


@dataclass(frozen=True)
class NumericFeature:
    """A numeric input. ``allowed`` restricts it to a set of values (a loan term, say)."""

    name: str
    description: str = ""
    min: float | None = None
    max: float | None = None
    allowed: tuple[float, ...] | None = None
    nullable: bool = False
    integer: bool = False
    monotone: str | None = None
    """``increasing`` or ``decreasing`` in risk, where the lender knows the direction (see
    :data:`MONOTONE_DIRECTIONS`); models are constrained to it and the gate checks it."""


@dataclass(frozen=True)
class CategoricalFeature:
    """A categorical input. ``values`` are the known categories; the loan book may use no others."""

    name: str
    description: str = ""
    values: tuple[str, ...] | None = None
    nullable: bool = False


@dataclass(frozen=True)
class DerivedFeature:
    """A numeric feature computed in SQL from the declared inputs (rendered by the feature macro)."""

    name: str
    sql: str
    description: str = ""
    monotone: str | None = None
    """As :attr:`NumericFeature.monotone`, for the derived value itself."""


@dataclass(frozen=True)
class LoanBookSchema:
    """The declared columns of one loan book and their roles."""

    name: str
    id_column: str
    date_column: str
    group_column: str
    outcome_column: str
    outcome_positive: tuple[str, ...]
    outcome_negative: tuple[str, ...]
    numeric_features: tuple[NumericFeature, ...]
    categorical_features: tuple[CategoricalFeature, ...]
    derived_features: tuple[DerivedFeature, ...] = ()
    group_not_provided: str | None = None
    description: str = ""
    group_values: tuple[str, ...] | None = field(default=None)
    file_format: FileFormat = field(default_factory=FileFormat)
    """How the lender's file is written (import only; not part of the contract, see :meth:`contract`)."""

    # ----- reading -----------------------------------------------------------------------------
    @classmethod
    def from_yaml(cls, path: Path) -> LoanBookSchema:
        try:
            raw = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise LoanBookSchemaError(f"cannot read schema {path}: {exc}") from exc
        return cls.from_dict(raw, source=str(path))

    @classmethod
    def from_dict(cls, raw: Any, source: str = "schema") -> LoanBookSchema:
        if not isinstance(raw, dict):
            raise LoanBookSchemaError(f"{source}: expected a mapping at the top level")
        try:
            outcome = raw["outcome"]
            columns = raw["columns"]
            headers = _Headers()
            id_column = headers.take(_entry(columns["id"]), "name")
            date_entry = _entry(columns["date"])
            date_format = date_entry.pop("format", None)
            date_column = headers.take(date_entry, "name")
            group = dict(columns["group"])
            numeric = [dict(f) for f in raw.get("numeric_features", [])]
            categorical = [dict(f) for f in raw.get("categorical_features", [])]
            for feature in (*numeric, *categorical):
                headers.take(feature, "name")
            schema = cls(
                name=str(raw.get("name", "loan_book")),
                description=str(raw.get("description", "")),
                id_column=id_column,
                date_column=date_column,
                group_column=headers.take(group, "name"),
                group_values=_tuple(group.get("values")),
                group_not_provided=group.get("not_provided"),
                outcome_column=headers.take(dict(outcome), "column"),
                outcome_positive=tuple(str(v) for v in outcome["positive"]),
                outcome_negative=tuple(str(v) for v in outcome["negative"]),
                numeric_features=tuple(
                    NumericFeature(**{**f, "allowed": _tuple(f.get("allowed"))})
                    for f in numeric
                ),
                categorical_features=tuple(
                    CategoricalFeature(**{**f, "values": _tuple(f.get("values"), str)})
                    for f in categorical
                ),
                derived_features=tuple(DerivedFeature(**f) for f in raw.get("derived_features", [])),
                file_format=FileFormat.from_dict(
                    raw.get("file"), tuple(headers.mapped), None if date_format is None else str(date_format)),
            )
        except (KeyError, TypeError) as exc:
            raise LoanBookSchemaError(f"{source}: missing or malformed entry {exc}") from exc
        schema.check()
        return schema

    def check(self) -> None:
        """Refuse declarations downstream SQL could not use safely."""
        names = [self.id_column, self.date_column, self.group_column, self.outcome_column, *self.feature_names]
        for name in names:
            if not _IDENTIFIER.match(name):
                raise LoanBookSchemaError(f"column name {name!r} must be lowercase snake_case (a-z, 0-9, _)")
        if len(set(names)) != len(names):
            raise LoanBookSchemaError("a column is declared twice")
        clash = RESERVED_NAMES.intersection(self.feature_names)
        if clash:
            raise LoanBookSchemaError(f"feature name(s) {sorted(clash)} are reserved for role columns")
        if not self.feature_names:
            raise LoanBookSchemaError("declare at least one numeric or categorical feature")
        if set(self.outcome_positive) & set(self.outcome_negative):
            raise LoanBookSchemaError("an outcome value is both positive and negative")
        for feature in self._monotone_capable:
            if feature.monotone is not None and feature.monotone not in MONOTONE_DIRECTIONS:
                raise LoanBookSchemaError(
                    f"feature {feature.name!r}: monotone must be one of {sorted(MONOTONE_DIRECTIONS)}, "
                    f"got {feature.monotone!r}"
                )
        self.file_format.check()
        headers = [self.file_format.header(column) for column in self.declared_columns]
        taken = sorted({header for header in headers if headers.count(header) > 1})
        if taken:
            raise LoanBookSchemaError(f"file header(s) {taken} would be read for two columns: check the `source` names")

    def contract(self) -> LoanBookSchema:
        """The contract alone, without how one file was written: what lands beside the data."""
        return replace(self, file_format=FileFormat())

    # ----- views used downstream ---------------------------------------------------------------
    @property
    def input_names(self) -> tuple[str, ...]:
        """Raw feature columns an application carries (numeric first, then categorical)."""
        return tuple(f.name for f in self.numeric_features) + tuple(f.name for f in self.categorical_features)

    @property
    def declared_columns(self) -> tuple[str, ...]:
        """Every column a loan-book file carries: the four roles, then the raw features."""
        return (self.id_column, self.date_column, self.group_column, self.outcome_column, *self.input_names)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Model inputs: raw features plus derived ones."""
        return self.input_names + tuple(f.name for f in self.derived_features)

    @property
    def model_numeric(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.numeric_features) + tuple(f.name for f in self.derived_features)

    @property
    def model_categorical(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.categorical_features)

    @property
    def monotone_directions(self) -> dict[str, int]:
        """Model feature → +1 (risk rises with it) or −1 (risk falls), for the declared ones."""
        return {f.name: MONOTONE_DIRECTIONS[f.monotone] for f in self._monotone_capable if f.monotone is not None}

    @property
    def _monotone_capable(self) -> tuple[NumericFeature | DerivedFeature, ...]:
        return (*self.numeric_features, *self.derived_features)

    def dbt_var(self) -> dict[str, Any]:
        """The ``loan_book`` var the dbt project renders its staging and feature SQL from."""
        return {
            "id_column": self.id_column,
            "date_column": self.date_column,
            "group_column": self.group_column,
            "outcome_column": self.outcome_column,
            "outcome_positive": list(self.outcome_positive),
            "numeric_features": [f.name for f in self.numeric_features],
            "categorical_features": [f.name for f in self.categorical_features],
            "derived_features": [{"name": f.name, "sql": f.sql} for f in self.derived_features],
        }

    def to_dict(self) -> dict[str, Any]:
        """The YAML form (round-trips through :meth:`from_dict`)."""
        headers = dict(self.file_format.headers)

        def column(name: str, **extra: Any) -> str | dict[str, Any]:
            entry = {"name": name, **({"source": headers[name]} if name in headers else {}), **extra}
            return name if len(entry) == 1 else entry

        def feature(entry: dict[str, Any]) -> dict[str, Any]:
            name = entry["name"]
            return {"name": name, **({"source": headers[name]} if name in headers else {}), **_compact(entry)}

        date_format = {} if self.file_format.date_format is None else {"format": self.file_format.date_format}
        group: dict[str, Any] = {"name": self.group_column}
        if self.group_column in headers:
            group["source"] = headers[self.group_column]
        if self.group_values is not None:
            group["values"] = list(self.group_values)
        if self.group_not_provided is not None:
            group["not_provided"] = self.group_not_provided
        outcome: dict[str, Any] = {"column": self.outcome_column}
        if self.outcome_column in headers:
            outcome["source"] = headers[self.outcome_column]
        file = self.file_format.to_dict()
        return {
            "name": self.name,
            "description": self.description,
            **({"file": file} if file else {}),
            "columns": {"id": column(self.id_column), "date": column(self.date_column, **date_format),
                        "group": group},
            "outcome": {**outcome, "positive": list(self.outcome_positive), "negative": list(self.outcome_negative)},
            "numeric_features": [feature(asdict(f)) for f in self.numeric_features],
            "categorical_features": [feature(asdict(f)) for f in self.categorical_features],
            "derived_features": [_compact(asdict(f)) for f in self.derived_features],
        }

    def fingerprint(self) -> str:
        """A short, stable hash of the contract (recorded with data snapshots and models); how a
        file was written (:class:`FileFormat`) does not change it."""
        blob = json.dumps(self.contract().to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


class _Headers:
    """Collects the ``source`` header of each column entry as the entries are read."""

    def __init__(self) -> None:
        self.mapped: list[tuple[str, str]] = []

    def take(self, entry: dict[str, Any], key: str) -> str:
        """Remove ``source`` from ``entry`` (recording it) and return the entry's column name."""
        name = str(entry[key])
        source = entry.pop("source", None)
        if source is not None:
            self.mapped.append((name, str(source)))
        return name


def _entry(value: Any) -> dict[str, Any]:
    """A role column declared as a bare name or as a mapping (``{name, source, format}``)."""
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"name", "source", "format"})
        if unknown:
            raise LoanBookSchemaError(f"column entry {value} has unknown key(s) {unknown}")
        return dict(value)
    return {"name": value}


def _optional_text(value: Any) -> str | None:
    return None if value is None else str(value)


def _tuple(values: Any, kind: type = float) -> tuple[Any, ...] | None:
    if values is None:
        return None
    return tuple(kind(v) if kind is str else v for v in values)


def _compact(entry: dict[str, Any]) -> dict[str, Any]:
    """Drop defaults so the YAML form stays readable."""
    return {
        k: (list(v) if isinstance(v, tuple) else v)
        for k, v in entry.items()
        if v is not None and v != "" and v is not False
    }


def simulated_schema() -> LoanBookSchema:
    """The contract of the embedded simulator's loan book."""
    return LoanBookSchema.from_yaml(SIMULATED_SCHEMA_PATH)
