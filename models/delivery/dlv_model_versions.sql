{#- One row per evaluated model version: its test metrics, lineage, latest gate verdict with every
    check, and the person's decision. -#}

with overall as (

    select * from {{ ref('eval_metrics') }}
    where role = 'candidate' and is_deployed_policy and group_name = '__overall__'

),

lineage as (

    select * from {{ ref('stg_landing__model_lineage') }}

),

{#- A version gated more than once (the gate stage run again) is judged by its latest gate. -#}
latest_gate_checks as (

    select *
    from (
        select *, max(gated_at) over (partition by model_version) as latest_gated_at
        from {{ ref('eval_gate_history') }}
    ) as gate_history
    where gated_at = latest_gated_at

),

gates as (

    select
        model_version,
        max(gated_at) as gated_at,
        bool_and(coalesce(passed, false)) as gate_passed,
        count(case when not coalesce(passed, false) then 1 end) as failed_checks,
        {{ ordered_struct_list(
            ['check_name', 'subject', 'measured_value', 'comparison', 'limit_value', 'passed'],
            order_by=['check_name', 'subject']) }} as gate_checks

    from latest_gate_checks
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
        lineage.git_commit,
        lineage.training_data_rows,
        lineage.training_data_sha256,
        lineage.dbt_manifest_sha256,
        lineage.loan_book_snapshot,
        lineage.loan_book_contract,
        gates.gate_passed,
        gates.failed_checks,
        gates.gated_at,
        gates.gate_checks,
        decisions.decision,
        decisions.decided_by,
        decisions.decided_at,
        decisions.note as decision_note

    from overall
    left join lineage on lineage.model_version = overall.model_version
    left join gates on gates.model_version = overall.model_version
    left join decisions on decisions.model_version = overall.model_version and decisions.recency = 1

)

select * from versions
