{#-
    Decisions per model version, window (hour, day, count, deployment) and group: counts, the
    calibrated probabilities' expectations and, where outcomes have landed, the confusion matrix.
    mon_positive_rates, mon_fairness_estimated and mon_realised_quality read it, so all three
    share the same windows. Count windows number the scored requests of a version in event order.
-#}

{%- set aggregates -%}
        cast(count(*) as bigint) as n,
        cast(sum(flagged) as bigint) as positives,
        sum(probability) as expected_positives,
        sum(1 - probability) as expected_negatives,
        sum(case when flagged = 1 then 1 - probability else 0 end) as expected_false_positives,
        cast(count(defaulted) as bigint) as n_with_outcome,
        cast(coalesce(sum(defaulted), 0) as bigint) as defaults,
        cast(sum(case when defaulted = 1 and flagged = 1 then 1 else 0 end) as bigint) as true_positives,
        cast(sum(case when defaulted = 0 and flagged = 1 then 1 else 0 end) as bigint) as false_positives,
        cast(sum(case when defaulted = 1 and flagged = 0 then 1 else 0 end) as bigint) as false_negatives,
        cast(sum(case when defaulted = 0 and flagged = 0 then 1 else 0 end) as bigint) as true_negatives
{%- endset %}

with scored as (

    select * from {{ ref('mon_scored_requests') }}

),

windows as (

    {{ monitoring_aggregate('scored', aggregates, group_by=['fairness_group']) }}

)

select * from windows
