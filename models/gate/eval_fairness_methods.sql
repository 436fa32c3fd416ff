{#-
    Self-reported and BISG-estimated fairness side by side, per evaluation and group, with the
    difference: how well BISG recovers what the applicants said. Both gaps use the gate's size rule.
-#}

with evaluations as (

    select * from {{ ref('eval_metrics') }}
    where group_name <> '__overall__'

),

self_reported as (

    select * from evaluations where method = 'self_reported'

),

bisg as (

    select * from evaluations where method = 'bisg'

),

gaps as (

    select
        candidate_version,
        model_version,
        role,
        policy,
        max(case when method = 'self_reported' then fpr end) - min(case when method = 'self_reported' then fpr end)
            as fpr_gap_self_reported,
        max(case when method = 'bisg' then fpr end) - min(case when method = 'bisg' then fpr end) as fpr_gap_bisg
    from evaluations
    where repaid_effective >= {{ var('fpr_gap_min_repaid') }}
    group by candidate_version, model_version, role, policy

)

select
    self_reported.candidate_version,
    self_reported.model_version,
    self_reported.role,
    self_reported.policy,
    self_reported.group_name,
    self_reported.fpr as fpr_self_reported,
    bisg.fpr as fpr_bisg,
    bisg.fpr - self_reported.fpr as fpr_difference,
    self_reported.tpr as tpr_self_reported,
    bisg.tpr as tpr_bisg,
    self_reported.positive_rate as positive_rate_self_reported,
    bisg.positive_rate as positive_rate_bisg,
    gaps.fpr_gap_self_reported,
    gaps.fpr_gap_bisg
from self_reported
inner join bisg using (candidate_version, model_version, role, policy, group_name)
left join gaps using (candidate_version, model_version, role, policy)
