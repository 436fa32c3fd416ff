{#- One row per evaluated model version: its test metrics, gate verdict and approval. -#}

with overall as (

    select * from {{ ref('eval_metrics') }}
    where role = 'candidate' and is_deployed_policy and group_name = '__overall__'

),

gates as (

    select
        model_version,
        max(gated_at) as gated_at,
        min(case when passed then 1 else 0 end) = 1 as gate_passed,
        sum(case when passed then 0 else 1 end) as failed_checks

    from {{ ref('eval_gate_history') }}
    group by model_version

),

decisions as (

    select
        *,
        row_number() over (partition by model_version order by decided_at desc) as recency

    from {{ ref('dlv_approvals') }}

),

versions as (

    select
        overall.model_version,
        overall.run_id,
        overall.policy as deployed_policy,
        overall.auc,
        overall.fpr,
        overall.cost_per_applicant,
        overall.calibration_error,
        overall.evaluated_at,
        gates.gate_passed,
        gates.failed_checks,
        gates.gated_at,
        decisions.decision,
        decisions.decided_by,
        decisions.decided_at,
        decisions.note as decision_note

    from overall
    left join gates on gates.model_version = overall.model_version
    left join decisions on decisions.model_version = overall.model_version and decisions.recency = 1

)

select * from versions
