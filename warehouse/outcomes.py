"""Loan outcomes, keyed by the prediction log's request id: ``lendguard outcomes FILE``.

Outcomes (repaid or defaulted) arrive months after the decision; once landed, dbt joins them to
the logged decisions (``mon_realised_quality``). A lender's feed is a CSV or Parquet file with
the columns ``request_id`` and ``defaulted`` (1/0 or true/false), optionally ``outcome_at`` (when
the outcome became known; default: when it is landed); other columns are ignored. The whole file is
checked first and every problem named; only a file that passes is landed, as one immutable file,
so a rejected file leaves nothing behind.

``simulate_outcomes`` draws outcomes for logged decisions from the simulator's true default
probability (``warehouse.simulator.default_probability``), for demos and tests, dated as outcomes
mature: a default becomes known on a day drawn uniformly over the first year on book, a repayment
at the end of it, so the vintage curves (``mon_vintage_default_rates``) rise month by month.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from warehouse import datasets, landing
from warehouse.errors import ProblemsError
from warehouse.paths import Paths

REQUIRED_COLUMNS = ("request_id", "defaulted")
OPTIONAL_COLUMNS = ("outcome_at",)
_TRUE = frozenset({"1", "true", "yes", "defaulted"})
_FALSE = frozenset({"0", "false", "no", "repaid"})
SHOWN = 5
"""Offending values shown per problem."""
SIMULATED_HORIZON_DAYS = 365
"""A simulated outcome is whether the loan defaults within this many days of the decision; a repayment
becomes known at the end of them, a default on a day drawn uniformly from
``SIMULATED_FIRST_DEFAULT_DAY`` to the end."""
SIMULATED_FIRST_DEFAULT_DAY = 30
"""No simulated default is known before the first payment is missed."""


class OutcomesRejectedError(ProblemsError):
    """The file cannot be landed; ``problems`` lists every reason, and nothing was landed."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source}: outcomes not landed", problems)


@dataclass(frozen=True)
class OutcomesResult:
    batch_id: str
    rows: int
    defaults: int
    not_simulated: tuple[str, ...] = ()
    """Simulation only: why some requests got no outcome (one line per reason, with examples)."""


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _read(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if not path.is_file():
        raise OutcomesRejectedError(str(path), ["no such file"])
    try:
        if suffix == ".csv":
            return pd.read_csv(path, dtype=str, keep_default_na=False)
        if suffix in {".parquet", ".pq"}:
            return pd.read_parquet(path)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise OutcomesRejectedError(str(path), [f"cannot read it: {exc}"]) from None
    raise OutcomesRejectedError(str(path), [f"file type {suffix or '(none)'!r} is not supported: use .csv or .parquet"])


def _rows(mask: pd.Series) -> str:
    """Data-row numbers (1-based, as in a spreadsheet without the header) of the first offenders."""
    numbers = [str(i + 1) for i in np.flatnonzero(mask.to_numpy())[:SHOWN]]
    more = f" and {int(mask.sum()) - SHOWN} more" if mask.sum() > SHOWN else ""
    return ", ".join(numbers) + more


def logged_request_ids(paths: Paths) -> set[str]:
    """Every request id in the landed prediction log (read from the landing zone, not the warehouse)."""
    rows = datasets.query_landed(paths, landing.PREDICTION_LOG, "select distinct request_id from landed")
    return {r[0] for r in rows if r[0] is not None}


def validate(frame: pd.DataFrame, known_ids: set[str] | None, source: str) -> pd.DataFrame:
    """The landable rows of ``frame``, or :class:`OutcomesRejectedError` naming every problem."""
    problems: list[str] = []
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise OutcomesRejectedError(source, [f"missing column(s) {missing}; required: {list(REQUIRED_COLUMNS)}, "
                                             f"optional: {list(OPTIONAL_COLUMNS)}"])
    if frame.empty:
        raise OutcomesRejectedError(source, ["the file has no rows"])

    ids = frame["request_id"].astype("string").str.strip()
    blank = ids.isna() | (ids == "")
    if blank.any():
        problems.append(f"request_id is empty in row(s) {_rows(blank)}")
    duplicated = ids.duplicated(keep=False) & ~blank
    if duplicated.any():
        problems.append(f"request_id repeats in row(s) {_rows(duplicated)} (one outcome per request)")

    raw = frame["defaulted"]
    text = raw.astype("string").str.strip().str.lower()
    text = text.where(~text.isin(["1.0", "0.0"]), text.str[:1])
    bad = ~text.isin(_TRUE | _FALSE)
    if bad.any():
        shown = sorted({str(v) for v in raw[bad].head(SHOWN)})
        problems.append(f"defaulted must be 1/0 (or true/false, defaulted/repaid); got {shown} in row(s) {_rows(bad)}")
    defaulted = text.isin(_TRUE).astype("int8")

    landed_at = _now()
    if "outcome_at" in frame.columns:
        given = frame["outcome_at"]
        blank_at = given.isna() | (given.astype("string").str.strip() == "")
        parsed = pd.to_datetime(given.where(~blank_at), errors="coerce", utc=True, format="mixed")
        unparsable = parsed.isna() & ~blank_at
        if unparsable.any():
            problems.append(f"outcome_at is not a timestamp in row(s) {_rows(unparsable)}")
        outcome_at = parsed.dt.tz_convert("UTC").dt.tz_localize(None).fillna(pd.Timestamp(landed_at))
    else:
        outcome_at = pd.Series(pd.Timestamp(landed_at), index=frame.index)

    if known_ids is not None and not blank.all():
        unknown = ~ids.isin(list(known_ids)) & ~blank
        if unknown.any():
            shown = list(ids[unknown].head(SHOWN))
            problems.append(f"{int(unknown.sum())} request_id(s) are not in the prediction log, e.g. {shown} "
                            f"(row(s) {_rows(unknown)})")
    if problems:
        raise OutcomesRejectedError(source, problems)
    batch_id = f"{landed_at:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    return pd.DataFrame({
        "request_id": ids.astype(str), "defaulted": defaulted, "outcome_at": outcome_at.astype("datetime64[us]"),
        "batch_id": batch_id, "landed_at": pd.Timestamp(landed_at),
    })


def _land(paths: Paths, rows: pd.DataFrame) -> OutcomesResult:
    datasets.land_rows(paths, datasets.OUTCOMES, rows)
    return OutcomesResult(str(rows["batch_id"].iloc[0]), len(rows), int(rows["defaulted"].sum()))


def import_outcomes(paths: Paths, path: Path) -> OutcomesResult:
    """Check a CSV/Parquet outcome file against the prediction log and land it whole, or nothing."""
    frame = _read(path)
    rows = validate(frame, logged_request_ids(paths), str(path))
    return _land(paths, rows)


def outcome_delays(defaulted: np.ndarray, uniforms: np.ndarray, horizon_days: int) -> np.ndarray:
    """Seconds from decision to known outcome: a default's spread uniformly over
    [``SIMULATED_FIRST_DEFAULT_DAY``, ``horizon_days``) days by ``uniforms`` (in [0, 1)), a repayment's
    at ``horizon_days``."""
    if horizon_days <= SIMULATED_FIRST_DEFAULT_DAY:
        raise ValueError(f"horizon_days must exceed {SIMULATED_FIRST_DEFAULT_DAY}, got {horizon_days}")
    day = timedelta(days=1).total_seconds()
    spread = (SIMULATED_FIRST_DEFAULT_DAY + uniforms * (horizon_days - SIMULATED_FIRST_DEFAULT_DAY)) * day
    return np.where(defaulted, np.floor(spread), horizon_days * day)


def simulate_outcomes(paths: Paths, seed: int = 17, *, horizon_days: int = SIMULATED_HORIZON_DAYS) -> OutcomesResult:
    """Draw outcomes for every decided request that has none yet, from the simulator's truth.

    Each request defaults with the simulator's true probability for the inputs it was sent with
    (``default_probability``); draws are seeded and taken in request-id order, so the same log and
    seed give the same outcomes. Each outcome is dated after the request's event time by
    :func:`outcome_delays`. Needs the simulator's loan book (its feature columns in the log).
    """
    from warehouse.simulator import (  # noqa: PLC0415 - numpy-heavy, only here
        CATEGORICAL_FEATURES,
        NUMERIC_FEATURES,
        default_probability,
    )

    log_glob = str(paths.landing / landing.PREDICTION_LOG / "*.parquet").replace("'", "''")
    out_glob = str(paths.landing / datasets.OUTCOMES / "*.parquet").replace("'", "''")
    if not list((paths.landing / landing.PREDICTION_LOG).glob("*.parquet")):
        raise OutcomesRejectedError("simulation", ["the prediction log is empty: nothing to simulate outcomes for"])
    has_outcomes = bool(list((paths.landing / datasets.OUTCOMES).glob("*.parquet")))
    already = (f"and request_id not in (select request_id from read_parquet('{out_glob}', union_by_name = true))"
               if has_outcomes else "")
    with duckdb.connect() as con:
        table = con.sql(
            f"select *, coalesce(occurred_at, received_at) as event_at "
            f"from read_parquet('{log_glob}', union_by_name = true) "
            f"where decision is not null and status_code < 400 {already} order by request_id"
        ).arrow()
    if hasattr(table, "read_all"):
        table = table.read_all()
    if table.num_rows == 0:
        raise OutcomesRejectedError("simulation", ["every decided request already has an outcome"])
    table, not_simulated = _simulatable(table, (*NUMERIC_FEATURES, *CATEGORICAL_FEATURES))
    if table.num_rows == 0:
        raise OutcomesRejectedError("simulation", [f"no request can be simulated: {line}" for line in not_simulated])
    try:
        probability = default_probability(table)
    except ValueError as exc:
        raise OutcomesRejectedError("simulation", [f"the log is not the simulator's loan book: {exc}"]) from None
    rng = np.random.default_rng(seed)
    defaulted = rng.random(table.num_rows) < probability
    delays = outcome_delays(defaulted, rng.random(table.num_rows), horizon_days)
    event_at = pd.to_datetime(table.column("event_at").to_pandas())
    landed_at = _now()
    rows = pd.DataFrame({
        "request_id": table.column("request_id").to_pandas().astype(str),
        "defaulted": defaulted.astype("int8"),
        "outcome_at": (event_at + pd.to_timedelta(delays, unit="s")).astype("datetime64[us]"),
        "batch_id": f"simulated-{landed_at:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}",
        "landed_at": pd.Timestamp(landed_at),
    })
    landed = _land(paths, rows)
    return OutcomesResult(landed.batch_id, landed.rows, landed.defaults, not_simulated)


def _simulatable(table: pa.Table, inputs: tuple[str, ...]) -> tuple[pa.Table, tuple[str, ...]]:
    """The requests the simulator's truth has a probability for, and a line per reason for the others:
    an input sent empty, or an unknown category (the API accepts and flags it)."""
    missing = np.zeros(table.num_rows, dtype=bool)
    for name in (name for name in inputs if name in table.column_names):
        missing |= table.column(name).is_null().to_numpy()
    unknown = np.zeros(table.num_rows, dtype=bool)
    if "unknown_categories" in table.column_names:
        unknown = pc.fill_null(pc.not_equal(table.column("unknown_categories"), ""), False).to_numpy() & ~missing
    reasons = tuple(_skipped(why, table.filter(pa.array(mask))) for why, mask in
                    (("with an input missing", missing), ("with an unknown category", unknown)) if mask.any())
    return table.filter(pa.array(~(missing | unknown))), reasons


def _skipped(why: str, rows: pa.Table) -> str:
    examples = rows.column("request_id").to_pylist()[:SHOWN]
    return f"{rows.num_rows:,} request(s) {why} got no outcome, e.g. {', '.join(map(str, examples))}"
