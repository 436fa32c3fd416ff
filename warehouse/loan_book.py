"""The loan-book contract: which columns a loan book has and what each one means.

One declaration (a YAML file) drives everything downstream: import validation, the dbt staging and
feature SQL (passed to dbt as the ``loan_book`` var), the model's inputs, the API's request body and
monitoring. Nothing downstream names the simulator's columns; it names roles from this contract.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
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
            schema = cls(
                name=str(raw.get("name", "loan_book")),
                description=str(raw.get("description", "")),
                id_column=columns["id"],
                date_column=columns["date"],
                group_column=columns["group"]["name"],
                group_values=_tuple(columns["group"].get("values")),
                group_not_provided=columns["group"].get("not_provided"),
                outcome_column=outcome["column"],
                outcome_positive=tuple(str(v) for v in outcome["positive"]),
                outcome_negative=tuple(str(v) for v in outcome["negative"]),
                numeric_features=tuple(
                    NumericFeature(**{**f, "allowed": _tuple(f.get("allowed"))})
                    for f in raw.get("numeric_features", [])
                ),
                categorical_features=tuple(
                    CategoricalFeature(**{**f, "values": _tuple(f.get("values"), str)})
                    for f in raw.get("categorical_features", [])
                ),
                derived_features=tuple(DerivedFeature(**f) for f in raw.get("derived_features", [])),
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

    # ----- views used downstream ---------------------------------------------------------------
    @property
    def input_names(self) -> tuple[str, ...]:
        """Raw feature columns an application carries (numeric first, then categorical)."""
        return tuple(f.name for f in self.numeric_features) + tuple(f.name for f in self.categorical_features)

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
        group: dict[str, Any] = {"name": self.group_column}
        if self.group_values is not None:
            group["values"] = list(self.group_values)
        if self.group_not_provided is not None:
            group["not_provided"] = self.group_not_provided
        return {
            "name": self.name,
            "description": self.description,
            "columns": {"id": self.id_column, "date": self.date_column, "group": group},
            "outcome": {
                "column": self.outcome_column,
                "positive": list(self.outcome_positive),
                "negative": list(self.outcome_negative),
            },
            "numeric_features": [_compact(asdict(f)) for f in self.numeric_features],
            "categorical_features": [_compact(asdict(f)) for f in self.categorical_features],
            "derived_features": [_compact(asdict(f)) for f in self.derived_features],
        }

    def fingerprint(self) -> str:
        """A short, stable hash of the declaration (recorded with data snapshots and models)."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


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
