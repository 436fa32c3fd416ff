{#-
    The audit trail in one query: every logged request (int_requests, accepted or refused) with what
    stands behind its answer: the model version, its MLflow run, git commit, training-data
    fingerprint and dbt manifest hash, its latest gate (every check's value and limit), the person's
    decision on it (who, when, why), and the policy and threshold applied. A view over tables, so
    it costs nothing to build and reads only the published snapshot (never a landing file).
-#}
{{ config(materialized='view') }}

with requests as (

    select * from {{ ref('int_requests') }}

),

versions as (

    select * from {{ ref('dlv_model_versions') }}

),

thresholds as (

    select * from {{ ref('eval_thresholds') }}

),

audited as (

    select
        requests.request_id,
        requests.received_at,
        requests.event_at,
        requests.status_code,
        requests.mode,
        requests.fairness_group,
        requests.probability,
        requests.decision,
        requests.model_version,
        versions.run_id as mlflow_run_id,
        versions.git_commit,
        versions.training_data_rows,
        versions.training_data_sha256,
        versions.dbt_manifest_sha256,
        versions.loan_book_snapshot,
        versions.gate_passed,
        versions.gated_at,
        versions.gate_checks,
        versions.decision as version_decision,
        versions.decided_by,
        versions.decided_at,
        versions.decision_note,
        versions.deployed_policy as policy,
        requests.threshold as threshold_applied,
        coalesce(own.threshold, pooled.threshold) as policy_threshold,
        own.group_name is null as policy_threshold_is_default

    from requests
    left join versions on versions.model_version = requests.model_version
    left join thresholds as own
        on own.model_version = requests.model_version
        and own.policy = versions.deployed_policy
        and own.group_name = requests.fairness_group
    left join thresholds as pooled
        on pooled.model_version = requests.model_version
        and pooled.policy = versions.deployed_policy
        and pooled.group_name = '__default__'  {# warehouse.datasets.DEFAULT_GROUP: any group without its own #}

)

select * from audited
