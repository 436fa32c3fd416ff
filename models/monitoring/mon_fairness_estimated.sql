{#-
    Label-free fairness: each group's false-positive rate estimated from the calibrated
    probabilities, per model version and window, before any outcome is known. With p the predicted
    probability of default, a request is a negative (repaid) with probability 1 - p, so
    expected negatives = sum(1 - p), expected false positives = sum over flagged requests of (1 - p),
    estimated FPR = expected false positives / expected negatives. The window's gap is max - min of
    the estimated FPR over groups with at least var('estimated_fpr_min_expected_negatives') expected
    negatives.
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

estimated as (

    select
        cells.model_version,
        cells.window_kind,
        cells.window_index,
        cells.window_start,
        cells.window_end,
        cells.fairness_group,
        cells.n,
        cells.positives,
        cells.expected_negatives,
        cells.expected_false_positives,
        cells.expected_false_positives / nullif(cells.expected_negatives, 0) as estimated_fpr,
        reference.fpr as reference_fpr,
        cells.expected_negatives >= {{ var('estimated_fpr_min_expected_negatives') }} as in_gap

    from cells
    left join reference
        on reference.model_version = cells.model_version
        and reference.group_name = cells.fairness_group
        and reference.recency = 1

),

gaps as (

    select
        *,
        case when sum(case when in_gap then 1 else 0 end) over per_window >= 2 then
            max(case when in_gap then estimated_fpr end) over per_window
            - min(case when in_gap then estimated_fpr end) over per_window
        end as estimated_fpr_gap,
        cast(sum(case when in_gap then 1 else 0 end) over per_window as bigint) as groups_in_gap

    from estimated
    window per_window as (partition by model_version, window_kind, window_start, window_index)

)

select * from gaps
