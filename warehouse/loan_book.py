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
    "proxy_surname", "proxy_zcta", "proxy_first_name", "proxy_census_tract",
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


SURNAME, ZCTA, ZIP, FIRST_NAME, CENSUS_TRACT = "surname", "zcta", "zip", "first_name", "census_tract"
PROXY_ROLES: tuple[str, ...] = (SURNAME, ZCTA, ZIP, FIRST_NAME, CENSUS_TRACT)
"""What a ``proxies`` column may stand for. BISG needs the surname and an area: the ZCTA, or a ZIP
code (its five digits taken as the ZCTA: an approximation, ZIP codes being postal routes and ZCTAs
the Census's areas built from them; most coincide, some ZIP codes have no ZCTA and then BISG falls
back to the surname alone). ``first_name`` and ``census_tract`` are carried through for BIFSG and
tract-level geocoding; the warehouse's BISG uses the surname and the ZCTA."""
PROXY_STAGED_NAMES: dict[str, str] = {
    SURNAME: "proxy_surname", ZCTA: "proxy_zcta", ZIP: "proxy_zcta",
    FIRST_NAME: "proxy_first_name", CENSUS_TRACT: "proxy_census_tract",
}
"""The canonical column staging gives each role (a ZIP column is staged as the ZCTA)."""


GROUP_THRESHOLDS, SINGLE_THRESHOLD = "group_thresholds", "single_threshold"
POLICIES = (GROUP_THRESHOLDS, SINGLE_THRESHOLD)
"""The decision policies (ml.fairness computes them); named here so a contract can choose one."""


class GroupThresholdsWithoutGroupError(LoanBookSchemaError):
    """Group thresholds were asked for on a loan book that declares no group column."""


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
    group_column: str | None
    """The self-reported group (thresholds, fairness); None when the book declares ``proxies`` only."""
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
    proxy_columns: tuple[tuple[str, str], ...] = ()
    """(role, column) pairs as declared; read them as :attr:`proxies`. A tuple, so the frozen
    contract stays hashable."""
    policy: str | None = None
    """The decision policy this book deploys (``group_thresholds``, ``single_threshold``); None: the
    project's ``deployed_policy`` var where the book has a group, else the single threshold."""

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
            group = dict(columns["group"]) if columns.get("group") is not None else None
            proxies = _proxies(raw.get("proxies"), headers)
            numeric = [dict(f) for f in raw.get("numeric_features", [])]
            categorical = [dict(f) for f in raw.get("categorical_features", [])]
            for feature in (*numeric, *categorical):
                headers.take(feature, "name")
            schema = cls(
                name=str(raw.get("name", "loan_book")),
                description=str(raw.get("description", "")),
                id_column=id_column,
                date_column=date_column,
                group_column=None if group is None else headers.take(group, "name"),
                group_values=None if group is None else _tuple(group.get("values")),
                group_not_provided=None if group is None else group.get("not_provided"),
                proxy_columns=tuple(proxies.items()),
                policy=_optional_text(raw.get("deployed_policy")),
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
        if self.group_column is None and not self.proxies:
            raise LoanBookSchemaError(
                "declare the group column (`columns.group`) or `proxies` (surname and zcta or zip) to "
                "estimate it with BISG: fairness cannot be tested without one of them")
        self._check_proxies()
        if self.policy is not None and self.policy not in POLICIES:
            raise LoanBookSchemaError(f"deployed_policy must be one of {list(POLICIES)}, got {self.policy!r}")
        if self.policy == GROUP_THRESHOLDS:
            self.refuse_group_thresholds()
        names = [self.id_column, self.date_column, *self.group_columns, self.outcome_column, *self.feature_names,
                 *self.proxies.values()]
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

    def _check_proxies(self) -> None:
        if not self.proxies:
            return
        unknown = sorted(set(self.proxies) - set(PROXY_ROLES))
        if unknown:
            raise LoanBookSchemaError(f"proxies: unknown role(s) {unknown}; known: {list(PROXY_ROLES)}")
        if SURNAME not in self.proxies:
            raise LoanBookSchemaError("proxies: BISG needs a `surname` column")
        areas = [role for role in (ZCTA, ZIP) if role in self.proxies]
        if len(areas) != 1:
            raise LoanBookSchemaError("proxies: declare the area as exactly one of `zcta` or `zip` "
                                      f"(got {areas or 'neither'})")

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
        """Every column a loan-book file carries: the roles, the raw features, then the proxy columns."""
        return (self.id_column, self.date_column, *self.group_columns, self.outcome_column, *self.input_names,
                *self.proxies.values())

    @property
    def proxies(self) -> dict[str, str]:
        """Role (:data:`PROXY_ROLES`) -> column: what BISG estimates group membership from, for
        fairness *testing* only. Never model inputs, never a threshold's group."""
        return dict(self.proxy_columns)

    @property
    def group_columns(self) -> tuple[str, ...]:
        """The group column, or nothing for a book without one: for column lists that carry it."""
        return () if self.group_column is None else (self.group_column,)

    @property
    def has_group(self) -> bool:
        """The book declares a self-reported group: group thresholds and self-reported fairness are possible."""
        return self.group_column is not None

    @property
    def staged_proxies(self) -> dict[str, str]:
        """Staging's canonical proxy column (``proxy_surname``, ``proxy_zcta``, ...) -> the contract's column."""
        return {PROXY_STAGED_NAMES[role]: column for role, column in self.proxies.items()}

    def deployed_policy(self, project_default: str) -> str:
        """The decision policy this book deploys: its own ``deployed_policy`` if it declares one, else
        the project's var where the book has a group column, else the single threshold.

        A book without a group column deploys the single threshold: group thresholds need the
        applicant's self-reported group, and BISG estimates are for testing, never for deciding.
        Such a contract declaring ``deployed_policy: group_thresholds`` is refused (:meth:`check`).
        """
        if self.policy is not None:
            return self.policy
        return project_default if self.has_group else SINGLE_THRESHOLD

    def refuse_group_thresholds(self) -> None:
        """Raise :class:`GroupThresholdsWithoutGroupError` unless the book declares a group column."""
        if not self.has_group:
            raise GroupThresholdsWithoutGroupError(
                f"loan book {self.name!r} declares no group column (proxies only): group thresholds need each "
                "applicant's self-reported group, and BISG probabilities are for testing fairness, never for "
                "deciding; such a book deploys the single threshold (deployed_policy: single_threshold)")

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
            "proxies": self.staged_proxies,
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
        group: dict[str, Any] | None = None
        if self.group_column is not None:
            group = {"name": self.group_column}
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
                        **({} if group is None else {"group": group})},
            **({"proxies": {role: column(name) for role, name in self.proxies.items()}} if self.proxies else {}),
            "outcome": {**outcome, "positive": list(self.outcome_positive), "negative": list(self.outcome_negative)},
            "numeric_features": [feature(asdict(f)) for f in self.numeric_features],
            "categorical_features": [feature(asdict(f)) for f in self.categorical_features],
            "derived_features": [_compact(asdict(f)) for f in self.derived_features],
            **({} if self.policy is None else {"deployed_policy": self.policy}),
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


def _proxies(raw: Any, headers: _Headers) -> dict[str, str]:
    """``proxies:`` role -> column (a bare name or ``{name, source}``), sources recorded."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise LoanBookSchemaError("`proxies` must be a mapping of role -> column, roles " + ", ".join(PROXY_ROLES))
    return {str(role): headers.take(_entry(value), "name") for role, value in raw.items()}


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


SIMULATED_PROXIES = {SURNAME: "surname", ZCTA: "zcta5"}
"""The proxy columns ``lendguard simulate --proxies`` adds (warehouse.simulator.PROXY_COLUMNS)."""


def simulated_schema(*, proxies: bool = False, omit_group: bool = False) -> LoanBookSchema:
    """The contract of the embedded simulator's loan book; with ``proxies`` it declares the surname
    and ZCTA columns, with ``omit_group`` (which needs them) it has no group column."""
    if not proxies and not omit_group:
        return LoanBookSchema.from_yaml(SIMULATED_SCHEMA_PATH)
    raw = LoanBookSchema.from_yaml(SIMULATED_SCHEMA_PATH).to_dict()
    raw["proxies"] = dict(SIMULATED_PROXIES) if proxies else None
    if omit_group:
        raw["columns"].pop("group")
        raw["description"] += " Ethnicity not collected: BISG estimates it from surname and ZCTA, for testing."
    return LoanBookSchema.from_dict(raw, source="simulated loan book")
