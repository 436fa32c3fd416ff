{#-
    Positive-prediction (manual review) rate per model version, window and group, against the
    interval the version's test-split rate implies at the window's size.

    Interval: exact binomial quantiles (scipy.stats.binom.interval) around the reference rate, with
    the reference's own uncertainty, per method (self_reported, bisg).

    Weighted (BISG): a group's positives and requests are sums of membership weights w, its rate
    r = sum(w·flagged) / sum(w), and the binomial test runs at the effective size the gate uses
    (macro effective_size: least(Kish's (sum w)^2 / sum w^2, sum w), floored to whole trials, effective_n) with effective_positives =
    r · effective_n. With weights 1 (self_reported) n_eff = n, effective_positives = positives and every
    number below is the unweighted one exactly. The reference rate p0 is measured on the test split (x of m
    applicants), so it is itself uncertain: its Clopper–Pearson interval at the same level,
    [p_low, p_high] = [beta.ppf(a/2, x, m - x + 1), beta.ppf(1 - a/2, x + 1, m - x)], is taken as the
    plausible rates, and under them the window's count of positives of n scored requests should lie
    in [binom.ppf(a/2, n, p_low), binom.ppf(1 - a/2, n, p_high)]. A window breaches when its count
    lies outside. Without this widening a large window (a whole deployment) compares a precise rate
    with a noisy one and flags the reference's noise (seen: 3 criticals on 1M stable requests).
    The test is conservative (the union of two intervals). Correction for testing many groups and
    windows, fixed when the window closes (later windows never change an earlier verdict): each
    window gets its level window_alpha (macro monitoring_window_alpha: alpha-spending over a
    version's count windows, so the family-wise error over all of them stays below
    var('output_rate_alpha'); every other window is a family of its own at that alpha), and within
    the window Bonferroni over the groups tested in it: a = window_alpha / m. A cell is tested when
    the group has at least var('output_rate_min_n') requests in the window and its reference rate
    comes from at least var('output_rate_min_reference_n') test-split rows.
-#}

with cells as (

    select * from {{ ref('int_group_windows') }}

),

{{ monitoring_referenced_cells('cells') }},

joined as (

    select
        model_version,
        window_kind,
        window_index,
        window_start,
        window_end,
        method,
        fairness_group,
        n,
        weight,
        positives,
        positives / weight as rate,
        n_eff,
        effective_n,
        {#- Multiply first: with weights 1, positives * n / n is positives exactly (the rate times n need not be). #}
        positives * effective_n / weight as effective_positives,
        expected_rate,
        reference_n,
        coalesce(
            expected_rate is not null
            and reference_n >= {{ var('output_rate_min_reference_n') }}
            and n_eff >= {{ var('output_rate_min_n') }},
            false
        ) as tested

    from (
        select
            *,
            {{ effective_size('weight', 'weight_squares') }} as n_eff,
            cast(floor({{ effective_size('weight', 'weight_squares') }}) as bigint) as effective_n
        from referenced
    ) as effective

),

corrected as (

    select
        *,
        {{ monitoring_window_alpha(var('output_rate_alpha'), 'window_kind', 'window_index') }} as window_alpha,
        cast(sum(case when tested then 1 else 0 end) over (
            partition by model_version, method, window_kind, window_start, window_index
        ) as bigint) as tests_in_family

    from joined

),

reference_intervals as (

    select
        *,
        case when tested then window_alpha / nullif(tests_in_family, 0) end as alpha_per_test,
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
        case when tested then {{ binom_ppf('alpha_per_test / 2', 'effective_n', 'expected_rate_low') }} end as positives_low,
        case when tested then {{ binom_ppf('1 - alpha_per_test / 2', 'effective_n', 'expected_rate_high') }} end as positives_high

    from plausible_rates

),

final as (

    select
        model_version,
        window_kind,
        window_index,
        window_start,
        window_end,
        method,
        fairness_group,
        n,
        weight,
        positives,
        rate,
        n_eff,
        effective_n,
        effective_positives,
        expected_rate,
        reference_n,
        reference_positives,
        expected_rate_low,
        expected_rate_high,
        tested,
        window_alpha,
        tests_in_family,
        alpha_per_test,
        cast(positives_low as bigint) as positives_low,
        cast(positives_high as bigint) as positives_high,
        positives_low / effective_n as ci_low,
        positives_high / effective_n as ci_high,
        case when tested then effective_positives < positives_low or effective_positives > positives_high end as breach

    from intervals

)

select * from final
