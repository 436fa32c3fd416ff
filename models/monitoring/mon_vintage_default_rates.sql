{#-
    Vintage curves over landed outcomes: per model version, application-month cohort (the month of
    the decision's event_at), group ('__overall__' for all groups together) and months on book, the
    cohort's loans with a landed outcome, the defaults that became known in that month on book, and
    the cumulative default rate up to it (cumulative defaults / the cohort's loans with an outcome).
    Months on book = calendar months from the application's month to the month the outcome became
    known (outcome_at); every month from 0 to the last one observed in the cohort (over all its
    groups) has a row, so each curve is complete and ends at the same month for every group. The
    model's own decisions only (int_scored_requests: normal mode), so a curve is that version's.
-#}

with outcomes as (

    select
        model_version,
        fairness_group,
        cast(date_trunc('month', event_at) as date) as cohort_month,
        defaulted,
        greatest({{ dbt.datediff("date_trunc('month', event_at)", "date_trunc('month', outcome_at)", 'month') }}, 0)
            as outcome_month_on_book

    from {{ ref('int_scored_requests') }}
    where defaulted is not null

),

by_group as (

    select model_version, fairness_group, cohort_month, defaulted, outcome_month_on_book from outcomes
    union all
    select model_version, '__overall__' as fairness_group, cohort_month, defaulted, outcome_month_on_book from outcomes

),

cohorts as (

    select
        model_version,
        fairness_group,
        cohort_month,
        cast(count(*) as bigint) as loans,
        max(max(outcome_month_on_book)) over (partition by model_version, cohort_month) as months_observed

    from by_group
    group by model_version, fairness_group, cohort_month

),

months as (

    select
        model_version,
        fairness_group,
        cohort_month,
        loans,
        {{ integer_series(0, 'months_observed') }} as months_on_book

    from cohorts

),

new_defaults as (

    select
        model_version,
        fairness_group,
        cohort_month,
        outcome_month_on_book as months_on_book,
        cast(count(*) as bigint) as defaults_in_month

    from by_group
    where defaulted = 1
    group by model_version, fairness_group, cohort_month, outcome_month_on_book

),

curves as (

    select
        months.model_version,
        months.cohort_month,
        cast(months.months_on_book as integer) as months_on_book,
        months.fairness_group,
        months.loans,
        coalesce(new_defaults.defaults_in_month, 0) as defaults_in_month,
        cast(sum(coalesce(new_defaults.defaults_in_month, 0)) over (
            partition by months.model_version, months.fairness_group, months.cohort_month
            order by months.months_on_book rows between unbounded preceding and current row
        ) as bigint) as cumulative_defaults

    from months
    left join new_defaults
        on new_defaults.model_version = months.model_version
        and new_defaults.fairness_group = months.fairness_group
        and new_defaults.cohort_month = months.cohort_month
        and new_defaults.months_on_book = months.months_on_book

)

select
    model_version,
    cohort_month,
    months_on_book,
    fairness_group,
    loans,
    defaults_in_month,
    cumulative_defaults,
    cast(cumulative_defaults as double) / loans as cumulative_default_rate

from curves
