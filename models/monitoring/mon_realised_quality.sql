{#-
    Realised quality and fairness once outcomes have landed (stg_landing__outcomes, by request id),
    per model version, window and group: defaults, realised FPR (flagged among repaid) and TPR
    (flagged among defaulted), cost 5·FN + 1·FP (vars cost_false_negative, cost_false_positive), and
    the window's realised FPR gap over groups with at least var('realised_fpr_min_repaid') repaid
    loans. Windows are those of the decisions (int_group_windows); only cells with outcomes appear.
    Per method (self_reported, bisg): every count is a sum of membership weights (counts when
    self-reported), FPR_g = sum(w·FP) / sum(w·[repaid]). repaid_effective is the effective size of
    the repaid rows' weights, least((sum w)^2 / sum w^2, sum w) (macro effective_size; = repaid when self-reported): the gap counts a
    group with at least var('realised_fpr_min_repaid') of it, and realised_fpr_ci_low / _high are the
    Clopper–Pearson interval at var('fpr_ci_alpha') at that size with FPR·n_eff "false positives"
    (ml.metrics.weighted_fpr_interval, the gate's; exactly the unweighted interval with weights 1).
-#}

with cells as (

    select * from {{ ref('int_group_windows') }}
    where n_with_outcome > 0

),

rated as (

    select
        model_version,
        window_kind,
        window_index,
        window_start,
        window_end,
        method,
        fairness_group,
        n,
        n_with_outcome,
        defaults,
        n_with_outcome - defaults as repaid,
        {{ effective_size('(n_with_outcome - defaults)', 'repaid_weight_squares') }} as repaid_effective,
        true_positives,
        false_positives,
        false_negatives,
        true_negatives,
        cast(defaults as double) / n_with_outcome as default_rate,
        false_positives / nullif(false_positives + true_negatives, 0) as realised_fpr,
        true_positives / nullif(true_positives + false_negatives, 0) as realised_tpr,
        {{ var('cost_false_negative') }} * false_negatives + {{ var('cost_false_positive') }} * false_positives as cost,
        ({{ var('cost_false_negative') }} * false_negatives + {{ var('cost_false_positive') }} * false_positives)
            / n_with_outcome as cost_per_applicant,
        coalesce({{ effective_size('(n_with_outcome - defaults)', 'repaid_weight_squares') }}, 0)
            >= {{ var('realised_fpr_min_repaid') }} as in_gap

    from cells

),

intervals as (

    {#- k = FPR · n_eff: multiply the weighted false positives by n_eff / repaid (1 exactly with weights 1). #}
    select
        *,
        case
            when repaid_effective is null or repaid_effective <= 0 then null
            when false_positives <= 0 then 0.0
            else {{ beta_ppf(var('fpr_ci_alpha') ~ ' / 2', 'false_positives * (repaid_effective / repaid)',
                             'repaid_effective - false_positives * (repaid_effective / repaid) + 1') }}
        end as realised_fpr_ci_low,
        case
            when repaid_effective is null or repaid_effective <= 0 then null
            when false_positives >= repaid then 1.0
            else {{ beta_ppf('1 - ' ~ var('fpr_ci_alpha') ~ ' / 2', 'false_positives * (repaid_effective / repaid) + 1',
                             'repaid_effective - false_positives * (repaid_effective / repaid)') }}
        end as realised_fpr_ci_high

    from rated

),

gaps as (

    {{ monitoring_fpr_gaps('intervals', 'realised_fpr', 'realised_fpr_gap') }}

)

select * from gaps
