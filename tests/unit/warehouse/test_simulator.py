"""The simulator: reproducible, on contract, realistic enough to show the fairness problem, and drifting
exactly as each scenario says."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from warehouse.loan_book import simulated_schema
from warehouse.simulator import (
    BLOCK_ROWS,
    DEFAULT_ONSET,
    GROUP_SHARES,
    GROUPS,
    LOAN_COLUMNS,
    PROXY_COLUMNS,
    SCENARIOS,
    TRAFFIC_COLUMNS,
    TRUE_GROUP,
    CensusProxies,
    Scenario,
    default_probability,
    simulate_loans,
    simulate_traffic,
)

BOOK_ROWS = 100_000
TRAFFIC_ROWS = 20_000
DRIFT_SCENARIOS = ("economic_shock", "purpose_shift", "group_mix", "income_in_thousands", "group_score_shift")


def _loans(n: int, seed: int = 42) -> pa.Table:
    return pa.concat_tables(simulate_loans(n, seed))


def _np(table: pa.Table, column: str) -> np.ndarray:
    return table.column(column).to_numpy()


def _defaulted(table: pa.Table) -> np.ndarray:
    return _np(table, "loan_status") == "defaulted"


def _fpr_by_group(flagged: np.ndarray, defaulted: np.ndarray, group: np.ndarray) -> dict[str, float]:
    """FPR_g = P(flagged | repaid, g)."""
    return {g: float(flagged[(group == g) & ~defaulted].mean()) for g in GROUP_SHARES if (group == g).any()}


@pytest.fixture(scope="module")
def book() -> pa.Table:
    return _loans(BOOK_ROWS)


@pytest.fixture(scope="module")
def traffic() -> dict[str, pa.Table]:
    return {name: simulate_traffic(name, TRAFFIC_ROWS) for name in SCENARIOS}


def _split(table: pa.Table, onset: int = DEFAULT_ONSET) -> tuple[pa.Table, pa.Table]:
    return table.slice(0, onset), table.slice(onset)


# ----- reproducibility and streaming -------------------------------------------------------------
def test_same_seed_same_rows_other_seed_other_rows() -> None:
    assert _loans(5_000, seed=3).equals(_loans(5_000, seed=3))
    other = _loans(5_000, seed=4)
    assert not np.array_equal(_np(_loans(5_000, seed=3), "annual_income"), _np(other, "annual_income"))


def test_prefix_of_a_longer_run_equals_the_shorter_run() -> None:
    m = BLOCK_ROWS + 1_234  # crosses a block boundary and ends mid-block
    longer = _loans(2 * BLOCK_ROWS + 10)
    assert longer.slice(0, m).equals(_loans(m))


def test_streams_one_block_at_a_time() -> None:
    blocks = simulate_loans(10_000_000)
    first = next(blocks)  # 10 million rows are never materialised: the first block comes alone
    assert first.num_rows == BLOCK_ROWS
    assert first.equals(_loans(BLOCK_ROWS))
    sizes = [t.num_rows for t in simulate_loans(2 * BLOCK_ROWS + 7)]
    assert sizes == [BLOCK_ROWS, BLOCK_ROWS, 7]


# ----- the contract -----------------------------------------------------------------------------
def test_columns_and_types_follow_the_contract(book: pa.Table) -> None:
    schema = simulated_schema()
    expected = (
        schema.id_column,
        schema.date_column,
        schema.group_column,
        *schema.input_names,
        schema.outcome_column,
    )
    assert tuple(book.column_names) == expected == LOAN_COLUMNS
    assert book.schema.field(schema.id_column).type == pa.string()
    assert book.schema.field(schema.date_column).type == pa.date32()
    for name in (schema.group_column, schema.outcome_column, *schema.model_categorical):
        assert book.schema.field(name).type == pa.string(), name
    for feature in schema.numeric_features:
        kind = pa.int64() if feature.integer else pa.float64()
        assert book.schema.field(feature.name).type == kind, feature.name
    assert book.num_rows == BOOK_ROWS
    assert sum(c.null_count for c in book.columns) == 0


def test_values_within_the_declared_ranges(book: pa.Table) -> None:
    schema = simulated_schema()
    for feature in schema.numeric_features:
        values = _np(book, feature.name)
        if feature.allowed is not None:
            assert set(np.unique(values)) <= set(feature.allowed), feature.name
        if feature.min is not None:
            assert values.min() >= feature.min, feature.name
        if feature.max is not None:
            assert values.max() <= feature.max, feature.name
    for cat in schema.categorical_features:
        assert set(np.unique(_np(book, cat.name))) == set(cat.values or ()), cat.name
    assert set(np.unique(_np(book, schema.group_column))) == set(schema.group_values or ())
    outcomes = set(schema.outcome_positive) | set(schema.outcome_negative)
    assert set(np.unique(_np(book, schema.outcome_column))) == outcomes
    assert set(GROUP_SHARES) == set(schema.group_values or ())


def test_loan_ids_unique_and_dates_spread_over_the_range(book: pa.Table) -> None:
    ids = _np(book, "loan_id")
    assert len(np.unique(ids)) == len(ids)
    assert ids[0] == "L000000001"
    assert ids[-1] == f"L{BOOK_ROWS:09d}"
    dates = book.column("application_date")
    assert pc.min(dates).as_py() >= date(2021, 1, 1)
    assert pc.max(dates).as_py() <= date(2025, 12, 31)
    years = pc.year(dates).to_numpy()
    shares = np.bincount(years - 2021, minlength=5) / len(years)
    np.testing.assert_allclose(shares, 0.2, atol=0.01)


def test_date_range_is_honoured() -> None:
    dates = pa.concat_tables(simulate_loans(2_000, start_date=date(2024, 3, 1), end_date=date(2024, 3, 3))).column(
        "application_date"
    )
    assert set(dates.to_pylist()) == {date(2024, 3, 1), date(2024, 3, 2), date(2024, 3, 3)}


# ----- realism ----------------------------------------------------------------------------------
def test_default_rate_is_realistic(book: pa.Table) -> None:
    assert 0.10 <= _defaulted(book).mean() <= 0.20


def test_group_shares_close_to_targets(book: pa.Table) -> None:
    group = _np(book, "ethnicity")
    for g, target in GROUP_SHARES.items():
        assert (group == g).mean() == pytest.approx(target, abs=0.01), g


def test_groups_differ_structurally(book: pa.Table) -> None:
    group = _np(book, "ethnicity")
    white, black, hispanic = (group == "White"), (group == "Black"), (group == "Hispanic")
    income, score = _np(book, "annual_income"), _np(book, "credit_score")
    history = _np(book, "credit_history_years")
    assert np.median(income[black]) < 0.85 * np.median(income[white])
    assert score[white].mean() - score[black].mean() > 20
    assert history[white].mean() - history[hispanic].mean() > 2
    owns_home = np.isin(_np(book, "home_ownership"), ["mortgage", "own"])
    assert owns_home[white].mean() - owns_home[black].mean() > 0.1


def test_correlations_are_plausible(book: pa.Table) -> None:
    score, rate = _np(book, "credit_score"), _np(book, "interest_rate")
    assert np.corrcoef(score, rate)[0, 1] < -0.6  # risk-based pricing
    assert np.corrcoef(score, _np(book, "debt_to_income"))[0, 1] < -0.1
    assert np.corrcoef(score, _np(book, "revolving_utilisation"))[0, 1] < -0.2
    term = _np(book, "term_months")
    assert rate[term == 60].mean() - rate[term == 36].mean() > 1.0
    assert 0.1 < (term == 60).mean() < 0.4
    log_income = np.log(_np(book, "annual_income"))
    assert abs(stats.skew(log_income)) < 0.3  # income is roughly lognormal
    assert stats.skew(_np(book, "annual_income")) > 1.0
    defaulted = _defaulted(book)
    assert score[defaulted].mean() < score[~defaulted].mean() - 20


def test_true_probability_is_calibrated_in_every_group(book: pa.Table) -> None:
    """The outcome depends on the features only: a group-blind probability fits each group."""
    p, defaulted, group = default_probability(book), _defaulted(book), _np(book, "ethnicity")
    assert p.mean() == pytest.approx(defaulted.mean(), abs=0.005)
    for g in ("White", "Hispanic", "Black", "Asian", "Not provided"):
        mask = group == g
        assert p[mask].mean() == pytest.approx(defaulted[mask].mean(), abs=0.015), g
    assert (defaulted[group == "Black"].mean() - defaulted[group == "White"].mean()) > 0.05


def test_one_threshold_on_the_true_probability_gives_unequal_fpr(book: pa.Table) -> None:
    p, defaulted, group = default_probability(book), _defaulted(book), _np(book, "ethnicity")
    flagged = p >= np.quantile(p, 0.80)
    assert flagged.mean() == pytest.approx(0.20, abs=0.005)
    fpr = _fpr_by_group(flagged, defaulted, group)
    assert max(fpr.values()) - min(fpr.values()) >= 0.05
    assert fpr["Black"] - fpr["White"] >= 0.05


def test_one_threshold_on_a_fitted_model_gives_unequal_fpr(book: pa.Table) -> None:
    """A group-blind logistic regression on raw numeric features, threshold flagging 20 %."""
    numeric = [f.name for f in simulated_schema().numeric_features]
    x = np.column_stack([_np(book, c).astype(float) for c in numeric])
    x[:, numeric.index("annual_income")] = np.log(x[:, numeric.index("annual_income")])
    y, group = _defaulted(book), _np(book, "ethnicity")
    half = BOOK_ROWS // 2
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1_000))
    model.fit(x[:half], y[:half])
    score = model.predict_proba(x[half:])[:, 1]
    flagged = score >= np.quantile(score, 0.80)
    fpr = _fpr_by_group(flagged, y[half:], group[half:])
    assert max(fpr.values()) - min(fpr.values()) >= 0.05


# ----- production traffic -----------------------------------------------------------------------
def test_scenarios_are_documented() -> None:
    assert set(SCENARIOS) >= {"stable", *DRIFT_SCENARIOS}
    assert SCENARIOS["stable"].onset is None
    for name in DRIFT_SCENARIOS:
        spec = SCENARIOS[name]
        assert isinstance(spec, Scenario)
        assert spec.name == name
        assert spec.onset == DEFAULT_ONSET == 2000
        assert spec.description
        assert spec.changes
    with pytest.raises(AttributeError):
        SCENARIOS["stable"].onset = 5  # type: ignore[misc]


def test_traffic_columns_and_order(traffic: dict[str, pa.Table]) -> None:
    for name, table in traffic.items():
        assert tuple(table.column_names) == TRAFFIC_COLUMNS, name
        assert table.num_rows == TRAFFIC_ROWS
        assert table.schema.field("request_index").type == pa.int64()
        assert table.schema.field("occurred_at").type == pa.timestamp("us", tz="UTC")
        assert table.schema.field("affected").type == pa.bool_()
        np.testing.assert_array_equal(_np(table, "request_index"), np.arange(TRAFFIC_ROWS))
        assert table.select(LOAN_COLUMNS).schema == _loans(10).schema
    ids = _np(traffic["stable"], "loan_id")
    assert ids[0] == "A000000001"
    assert len(np.unique(ids)) == TRAFFIC_ROWS


def test_arrivals_increase_with_the_given_mean_interval(traffic: dict[str, pa.Table]) -> None:
    start = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    occurred = traffic["stable"].column("occurred_at")
    micros = occurred.cast(pa.int64()).to_numpy()
    gaps = np.diff(micros) / 1e6
    assert (gaps > 0).all()
    assert gaps.mean() == pytest.approx(30.0, rel=0.05)
    assert np.std(gaps) == pytest.approx(30.0, rel=0.05)  # exponential: sd equals mean
    assert occurred[0].as_py() > start
    days = pc.cast(pc.floor(pc.divide(pc.cast(micros, pa.float64()), 86_400e6)), pa.int32())
    assert traffic["stable"].column("application_date").equals(pa.chunked_array([days.cast(pa.date32())]))

    fast = simulate_traffic("stable", 1_000, start=datetime(2030, 6, 1, tzinfo=UTC), mean_interval_seconds=2.0)
    fast_gaps = np.diff(fast.column("occurred_at").cast(pa.int64()).to_numpy()) / 1e6
    assert fast_gaps.mean() == pytest.approx(2.0, rel=0.1)
    assert fast.column("occurred_at")[0].as_py().date() == date(2030, 6, 1)


def test_affected_flags(traffic: dict[str, pa.Table]) -> None:
    index = np.arange(TRAFFIC_ROWS)
    assert not _np(traffic["stable"], "affected").any()
    for name in DRIFT_SCENARIOS:
        np.testing.assert_array_equal(_np(traffic[name], "affected"), index >= DEFAULT_ONSET, name)
    late = simulate_traffic("economic_shock", 1_000, onset=600)
    assert _np(late, "affected").sum() == 400
    assert not _np(simulate_traffic("stable", 1_000, onset=10), "affected").any()


def test_before_onset_every_scenario_is_the_stable_traffic(traffic: dict[str, pa.Table]) -> None:
    stable_before, _ = _split(traffic["stable"])
    for name in DRIFT_SCENARIOS:
        before, after = _split(traffic[name])
        assert before.equals(stable_before), name
        assert not after.select(LOAN_COLUMNS).equals(_split(traffic["stable"])[1].select(LOAN_COLUMNS))


def test_traffic_is_reproducible_and_prefix_stable() -> None:
    long = simulate_traffic("group_mix", 3_000, seed=11)
    assert long.equals(simulate_traffic("group_mix", 3_000, seed=11))
    assert long.slice(0, 2_500).equals(simulate_traffic("group_mix", 2_500, seed=11))
    assert not long.equals(simulate_traffic("group_mix", 3_000, seed=12))


def test_stable_traffic_is_distributed_like_the_loan_book(traffic: dict[str, pa.Table], book: pa.Table) -> None:
    stable = traffic["stable"]
    for column in ("annual_income", "credit_score", "debt_to_income", "loan_amount"):
        assert stats.ks_2samp(_np(stable, column), _np(book, column)).statistic < 0.02, column
    assert _defaulted(stable).mean() == pytest.approx(_defaulted(book).mean(), abs=0.01)
    before, after = _split(stable)
    ratio = _np(after, "annual_income").mean() / _np(before, "annual_income").mean()
    assert ratio == pytest.approx(1.0, abs=0.04)
    assert _defaulted(after).mean() == pytest.approx(_defaulted(before).mean(), abs=0.02)


def test_economic_shock(traffic: dict[str, pa.Table]) -> None:
    before, after = _split(traffic["economic_shock"])
    _, stable_after = _split(traffic["stable"])
    ratio = _np(after, "annual_income").mean() / _np(before, "annual_income").mean()
    assert 0.75 <= ratio <= 0.85
    same_people = _np(after, "annual_income") / _np(stable_after, "annual_income")
    assert np.median(same_people) == pytest.approx(0.8, abs=0.005)
    assert np.median(_np(after, "debt_to_income")) > 1.15 * np.median(_np(before, "debt_to_income"))
    assert _defaulted(after).mean() - _defaulted(before).mean() > 0.03
    assert _defaulted(after).mean() - _defaulted(stable_after).mean() > 0.03


def test_income_in_thousands(traffic: dict[str, pa.Table]) -> None:
    before, after = _split(traffic["income_in_thousands"])
    _, stable_after = _split(traffic["stable"])
    ratio = _np(after, "annual_income").mean() / _np(before, "annual_income").mean()
    assert 0.0009 <= ratio <= 0.0011
    np.testing.assert_allclose(_np(after, "annual_income") * 1000, _np(stable_after, "annual_income"))
    others = [c for c in LOAN_COLUMNS if c != "annual_income"]
    assert after.select(others).equals(stable_after.select(others))  # same applicants, same outcomes


def test_group_score_shift(traffic: dict[str, pa.Table]) -> None:
    """One group's scores are sent 60 points low; everything else, outcomes included, is the stable traffic's."""
    _, after = _split(traffic["group_score_shift"])
    _, stable_after = _split(traffic["stable"])
    hispanic = _np(after, "ethnicity") == "Hispanic"
    moved = _np(stable_after, "credit_score") - _np(after, "credit_score")
    assert hispanic.any()
    assert (~hispanic).any()
    assert (moved[~hispanic] == 0).all()
    unclipped = hispanic & (_np(stable_after, "credit_score") >= 360)
    assert (moved[unclipped] == 60).all()
    others = [c for c in LOAN_COLUMNS if c != "credit_score"]
    assert after.select(others).equals(stable_after.select(others))  # same applicants, same outcomes


def test_purpose_shift(traffic: dict[str, pa.Table]) -> None:
    before, after = _split(traffic["purpose_shift"])

    def shares(table: pa.Table) -> dict[str, float]:
        purpose = _np(table, "purpose")
        return {p: float((purpose == p).mean()) for p in np.unique(_np(traffic["stable"], "purpose"))}

    pre, post = shares(before), shares(after)
    assert pre["small_business"] < 0.05
    assert post["small_business"] == pytest.approx(0.15, abs=0.015)
    assert post["debt_consolidation"] == pytest.approx(0.55, abs=0.02)
    assert 0.5 * sum(abs(post[p] - pre[p]) for p in pre) > 0.1  # total variation distance
    np.testing.assert_array_equal(_np(after, "ethnicity"), _np(_split(traffic["stable"])[1], "ethnicity"))


def test_group_mix(traffic: dict[str, pa.Table]) -> None:
    before, after = _split(traffic["group_mix"])
    group_before, group_after = _np(before, "ethnicity"), _np(after, "ethnicity")
    for g in ("Hispanic", "Black"):
        assert (group_before == g).mean() == pytest.approx(GROUP_SHARES[g], abs=0.025), g
        assert (group_after == g).mean() == pytest.approx(2 * GROUP_SHARES[g], abs=0.015), g
    assert (group_after == "White").mean() < GROUP_SHARES["White"] - 0.15
    assert set(np.unique(group_after)) == set(GROUP_SHARES)


# ----- errors -----------------------------------------------------------------------------------
def test_unknown_scenario_names_it_and_lists_valid_ones() -> None:
    with pytest.raises(ValueError, match="'recession'") as info:
        simulate_traffic("recession", 10)
    for name in SCENARIOS:
        assert name in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 0}, "n must be a positive integer"),
        ({"n": -5}, "n must be a positive integer"),
        ({"n": 2.5}, "n must be a positive integer"),
        ({"n": 10, "seed": -1}, "seed"),
        ({"n": 10, "onset": -1}, "onset"),
        ({"n": 10, "mean_interval_seconds": 0.0}, "mean_interval_seconds"),
        ({"n": 10, "mean_interval_seconds": float("inf")}, "mean_interval_seconds"),
        ({"n": 10, "start": datetime(2026, 1, 1)}, "timezone-aware"),
    ],
)
def test_traffic_rejects_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        simulate_traffic("economic_shock", **kwargs)  # type: ignore[arg-type]


def test_loans_reject_bad_arguments_when_called() -> None:
    with pytest.raises(ValueError, match="n must be a positive integer"):
        simulate_loans(0)  # raises before any iteration
    with pytest.raises(ValueError, match="seed"):
        simulate_loans(10, seed=-3)
    with pytest.raises(ValueError, match="before start_date"):
        simulate_loans(10, start_date=date(2025, 1, 2), end_date=date(2025, 1, 1))


def test_default_probability_needs_the_features(book: pa.Table) -> None:
    with pytest.raises(ValueError, match="credit_score"):
        default_probability(book.drop_columns(["credit_score"]))
    bad = book.slice(0, 3).set_column(
        book.column_names.index("purpose"), "purpose", pa.array(["holiday", "car", "car"])
    )
    with pytest.raises(ValueError, match="purpose"):
        default_probability(bad)


def test_start_offset_is_respected() -> None:
    start = datetime(2026, 3, 1, 12, 0, tzinfo=UTC) + timedelta(hours=5)
    table = simulate_traffic("stable", 50, start=start)
    assert table.column("occurred_at")[0].as_py() > start
    assert table.column("occurred_at")[0].as_py() < start + timedelta(minutes=10)


def test_arrival_times_stay_strictly_increasing_below_clock_resolution() -> None:
    """Microsecond timestamps: gaps far below 1 us must not produce ties."""
    micros = simulate_traffic("stable", 2_000, mean_interval_seconds=1e-7).column("occurred_at")
    assert (np.diff(micros.cast(pa.int64()).to_numpy()) >= 1).all()


def test_onset_inside_a_later_block_changes_only_what_the_scenario_changes() -> None:
    n, onset = BLOCK_ROWS + 500, BLOCK_ROWS - 100
    stable = simulate_traffic("stable", n, seed=5)
    buggy = simulate_traffic("income_in_thousands", n, seed=5, onset=onset)
    others = [c for c in TRAFFIC_COLUMNS if c not in {"annual_income", "affected"}]
    assert buggy.select(others).equals(stable.select(others))
    income, truth = _np(buggy, "annual_income"), _np(stable, "annual_income")
    np.testing.assert_array_equal(income[:onset], truth[:onset])
    np.testing.assert_allclose(income[onset:] * 1000, truth[onset:])
    assert _np(buggy, "affected").sum() == n - onset


def test_declared_directions_hold_for_the_true_risk() -> None:
    """Every direction the simulator's contract declares holds by construction: moving one input of
    real applicants (the others as drawn) moves the true probability of default only that way."""
    schema = simulated_schema()
    loans = _loans(2_000, seed=3)
    declared = {f.name: f for f in schema.numeric_features if f.monotone}
    assert {"annual_income", "credit_score", "debt_to_income", "delinquencies_2y"} <= set(declared)
    for name, feature in declared.items():
        sign = 1 if feature.monotone == "increasing" else -1
        values = sorted(feature.allowed) if feature.allowed else np.linspace(feature.min, feature.max, 60)
        risks = []
        for value in values:
            column = pa.array(np.full(loans.num_rows, float(value)), loans.schema.field(name).type, safe=False)
            risks.append(default_probability(loans.set_column(loans.schema.get_field_index(name), name, column)))
        steps = sign * np.diff(np.vstack(risks), axis=0)
        assert (steps >= 0).all(), f"{name}: risk moves against the declared {feature.monotone}"


# ----- BISG proxies (--proxies) --------------------------------------------------------------------
_CENSUS = ("white", "black", "api", "native", "multiple", "hispanic")
_BISG_GROUPS = {"white": "White", "black": "Black", "api": "Asian", "native": "Native American",
                "multiple": "Two or more races", "hispanic": "Hispanic"}


def _tiny_census() -> CensusProxies:
    """Three surnames and two ZCTAs with known probabilities (and the row BISG keeps for the rest)."""
    def table(key: str, rows: dict[str, list[float | None]]) -> pa.Table:
        columns = {key: list(rows)} | {c: [v[i] for v in rows.values()] for i, c in enumerate(_CENSUS)}
        return pa.table(columns)

    surnames = table("name", {  # P(group | surname): white, black, api, native, multiple, hispanic
        "GARCIA": [0.05, 0.01, 0.01, 0.01, 0.02, 0.90],
        "SMITH": [0.70, 0.23, 0.01, 0.01, 0.03, 0.02],
        "NGUYEN": [0.01, 0.00, 0.97, 0.00, 0.02, None],  # a suppressed cell counts 0
        "ALL OTHER NAMES": [0.5, 0.1, 0.1, 0.1, 0.1, 0.1],
    })
    zctas = table("zcta5", {"02139": [0.25, 0.5, 0.5, 0.5, 0.5, 0.1], "94103": [0.75, 0.5, 0.5, 0.5, 0.5, 0.9]})
    return CensusProxies.from_tables(surnames, zctas, _BISG_GROUPS)


def test_proxies_are_drawn_from_the_census_tables_given_the_group() -> None:
    """P(surname | Hispanic) ∝ P(Hispanic | surname) with uniform counts: 0.90 / 0.92 for GARCIA,
    0.02 / 0.92 for SMITH, 0 for NGUYEN (suppressed) and for 'ALL OTHER NAMES' (never drawn);
    P(zcta | Hispanic) is the table's: 0.1 and 0.9. Frequencies within 5 binomial standard errors."""
    n = 40_000
    drawn = _tiny_census().draw(np.full(n, GROUPS.index("Hispanic")), np.random.default_rng(1).random((n, 3)))
    expected = {"Garcia": 0.90 / 0.92, "Smith": 0.02 / 0.92}
    counts = {name: int((drawn["surname"] == name).sum()) for name in ("Garcia", "Smith", "Nguyen", "All Other Names")}
    for name, share in expected.items():
        assert abs(counts[name] - n * share) < 5 * np.sqrt(n * share * (1 - share)), counts
    assert counts["Nguyen"] == counts["All Other Names"] == 0
    assert abs(int((drawn["zcta5"] == "02139").sum()) - n * 0.1) < 5 * np.sqrt(n * 0.1 * 0.9)
    assert set(drawn[TRUE_GROUP]) == {"Hispanic"}


def test_not_provided_applicants_get_a_group_drawn_from_the_others_shares() -> None:
    n = 50_000
    drawn = _tiny_census().draw(np.full(n, GROUPS.index("Not provided")), np.random.default_rng(2).random((n, 3)))
    white_share = GROUP_SHARES["White"] / (1 - GROUP_SHARES["Not provided"])
    white = int((drawn[TRUE_GROUP] == "White").sum())
    assert abs(white - n * white_share) < 5 * np.sqrt(n * white_share * (1 - white_share))
    assert "Two or more races" not in set(drawn[TRUE_GROUP]), "no simulated group stands for it"


def test_a_simulated_group_missing_from_bisg_groups_is_refused() -> None:
    surnames = pa.table({"name": ["SMITH"], **{c: [1 / 6] for c in _CENSUS}})
    zctas = pa.table({"zcta5": ["02139"], **{c: [1.0] for c in _CENSUS}})
    with pytest.raises(ValueError, match=r"\['Asian'\] are not a value of the bisg_groups var"):
        CensusProxies.from_tables(surnames, zctas, {**_BISG_GROUPS, "api": "Asian or Pacific Islander"})


def test_proxies_leave_the_applicants_as_they_were() -> None:
    """The proxies' randomness is a stream of its own: the same seed gives the same applicants, with or
    without surnames; --omit-group drops the group column only."""
    plain = _loans(3_000, seed=4)
    census = _tiny_census()
    with_proxies = pa.concat_tables(simulate_loans(3_000, 4, proxies=census, keep_truth=True))
    assert with_proxies.select(plain.column_names).equals(plain)
    assert with_proxies.column_names[-3:] == [*PROXY_COLUMNS, TRUE_GROUP]
    reported = np.asarray(plain.column("ethnicity").to_pylist())
    truth = np.asarray(with_proxies.column(TRUE_GROUP).to_pylist())
    assert (truth[reported != "Not provided"] == reported[reported != "Not provided"]).all()
    omitted = pa.concat_tables(simulate_loans(3_000, 4, proxies=census, omit_group=True))
    assert "ethnicity" not in omitted.column_names
    assert omitted.column_names == [c for c in plain.column_names if c != "ethnicity"] + list(PROXY_COLUMNS)
    assert simulated_schema(proxies=True, omit_group=True).declared_columns[-2:] == PROXY_COLUMNS
    with pytest.raises(ValueError, match="need proxies"):
        simulate_loans(10, omit_group=True)


def test_same_profiles_draws_the_same_applicants_without_group_differences() -> None:
    """--same-profiles: the groups no longer differ in their features (one-way ANOVA of credit score,
    income and history across groups), the applicants' groups are the default book's, and the
    default book's groups do differ."""
    default = _loans(20_000, seed=8)
    same = pa.concat_tables(simulate_loans(20_000, 8, same_profiles=True))
    assert same.column("ethnicity").equals(default.column("ethnicity"))
    groups = np.asarray(same.column("ethnicity").to_pylist())
    for column in ("credit_score", "annual_income", "credit_history_years"):
        samples = [np.log(same.column(column).to_numpy()[groups == g].astype(float)) for g in GROUPS]
        assert stats.f_oneway(*samples).pvalue > 0.01, column
        differing = [np.log(default.column(column).to_numpy()[groups == g].astype(float)) for g in GROUPS]
        assert stats.f_oneway(*differing).pvalue < 1e-10, column
