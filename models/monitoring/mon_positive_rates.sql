{#-
    Positive-prediction (manual review) rate per model version, window and group, against the
    interval the version's test-split rate implies at the window's size.

    Interval: exact binomial quantiles (scipy.stats.binom.interval) around the reference rate, with
    the reference's own uncertainty. The reference rate p0 is measured on the test split (x of m
    applicants), so it is itself uncertain: its Clopper–Pearson interval at the same level,
    [p_low, p_high] = [beta.ppf(a/2, x, m - x + 1), beta.ppf(1 - a/2, x + 1, m - x)], is taken as the
    plausible rates, and under them the window's count of positives of n scored requests should lie
    in [binom.ppf(a/2, n, p_low), binom.ppf(1 - a/2, n, p_high)]. A window breaches when its count
    lies outside. Without this widening a large window (a whole deployment) compares a precise rate
    with a noisy one and flags the reference's noise (seen: 3 criticals on 1M stable requests).
    The test is conservative (the union of two intervals). Correction for testing
    many groups and windows: Bonferroni, a = var('output_rate_alpha') / m, where m is the number of
    (window, group) cells tested for that model version and window kind. A cell is tested when the
    group has at least var('output_rate_min_n') requests in the window and its reference rate comes
    from at least var('output_rate_min_reference_n') test-split rows.
-#}

with cells as (

    select * from {{ ref('mon_group_windows') }}

),

evaluations as (

    select * from {{ ref('stg_landing__evaluations') }}

),

reference as (

    {{ monitoring_deployed_reference('evaluations') }}
),

joined as (

    select
        cells.model_version,
        cells.window_kind,
        cells.window_index,
        cells.window_start,
        cells.window_end,
        cells.fairness_group,
        cells.n,
        cells.positives,
        cast(cells.positives as double) / cells.n as rate,
        reference.positive_rate as expected_rate,
        reference.n as reference_n,
        coalesce(
            reference.positive_rate is not null
            and reference.n >= {{ var('output_rate_min_reference_n') }}
            and cells.n >= {{ var('output_rate_min_n') }},
            false
        ) as tested

    from cells
    left join reference
        on reference.model_version = cells.model_version
        and reference.group_name = cells.fairness_group
        and reference.recency = 1

),

corrected as (

    select
        *,
        cast(sum(case when tested then 1 else 0 end) over (partition by model_version, window_kind) as bigint) as tests_in_family

    from joined

),

reference_intervals as (

    select
        *,
        case when tested then {{ var('output_rate_alpha') }} / nullif(tests_in_family, 0) end as alpha_per_test,
        cast(round(expected_rate * reference_n) as bigint) as reference_positives

    from corrected

),

plausible_rates as (

    select
        *,
        case
            when not tested then null
            when reference_positives = 0 then 0.0
            else {{ beta_ppf('alpha_per_test / 2', 'reference_positives', 'reference_n - reference_positives + 1') }}
        end as expected_rate_low,
        case
            when not tested then null
            when reference_positives = reference_n then 1.0
            else {{ beta_ppf('1 - alpha_per_test / 2', 'reference_positives + 1', 'reference_n - reference_positives') }}
        end as expected_rate_high

    from reference_intervals

),

intervals as (

    select
        *,
        case when tested then {{ binom_ppf('alpha_per_test / 2', 'n', 'expected_rate_low') }} end as positives_low,
        case when tested then {{ binom_ppf('1 - alpha_per_test / 2', 'n', 'expected_rate_high') }} end as positives_high

    from plausible_rates

),

final as (

    select
        model_version,
        window_kind,
        window_index,
        window_start,
        window_end,
        fairness_group,
        n,
        positives,
        rate,
        expected_rate,
        reference_n,
        reference_positives,
        expected_rate_low,
        expected_rate_high,
        tested,
        tests_in_family,
        alpha_per_test,
        cast(positives_low as bigint) as positives_low,
        cast(positives_high as bigint) as positives_high,
        positives_low / n as ci_low,
        positives_high / n as ci_high,
        case when tested then positives < positives_low or positives > positives_high end as breach

    from intervals

)

select * from final
