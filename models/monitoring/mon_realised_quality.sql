{#-
    Realised quality and fairness once outcomes have landed (stg_landing__outcomes, by request id),
    per model version, window and group: defaults, realised FPR (flagged among repaid) and TPR
    (flagged among defaulted), cost 5·FN + 1·FP (vars cost_false_negative, cost_false_positive), and
    the window's realised FPR gap over groups with at least var('realised_fpr_min_repaid') repaid
    loans. Windows are those of the decisions (mon_group_windows); only cells with outcomes appear.
-#}

with cells as (

    select * from {{ ref('mon_group_windows') }}
    where n_with_outcome > 0

),

rated as (

    select
        model_version,
        window_kind,
        window_index,
        window_start,
        window_end,
        fairness_group,
        n,
        n_with_outcome,
        defaults,
        n_with_outcome - defaults as repaid,
        true_positives,
        false_positives,
        false_negatives,
        true_negatives,
        cast(defaults as double) / n_with_outcome as default_rate,
        cast(false_positives as double) / nullif(false_positives + true_negatives, 0) as realised_fpr,
        cast(true_positives as double) / nullif(true_positives + false_negatives, 0) as realised_tpr,
        {{ var('cost_false_negative') }} * false_negatives + {{ var('cost_false_positive') }} * false_positives as cost,
        cast({{ var('cost_false_negative') }} * false_negatives + {{ var('cost_false_positive') }} * false_positives as double)
            / n_with_outcome as cost_per_applicant,
        n_with_outcome - defaults >= {{ var('realised_fpr_min_repaid') }} as in_gap

    from cells

),

gaps as (

    select
        *,
        {{ monitoring_fpr_gap('realised_fpr', 'realised_fpr_gap') }}

    from rated
    window per_window as (partition by model_version, window_kind, window_start, window_index)

)

select * from gaps
