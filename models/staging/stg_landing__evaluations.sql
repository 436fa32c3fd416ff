{#- The landed evaluations rows, as written (immutable files; dbt only reads them). Rows landed
    before BISG came in have no method (they were self-reported) and integer counts. The columns
    are named (not DuckDB's `* replace`, which Spark lacks), in the landed order. -#}

with source as (

    select * from {{ source('landing', 'evaluations') }}

)

select
    candidate_version,
    model_version,
    role,
    run_id,
    policy,
    is_deployed_policy,
    coalesce(method, 'self_reported') as method,
    group_name,
    cast(n as double) as n,
    cast(defaults as double) as defaults,
    cast(repaid as double) as repaid,
    coalesce(repaid_effective, cast(repaid as double)) as repaid_effective,
    auc,
    fpr,
    fpr_ci_low,
    fpr_ci_high,
    tpr,
    positive_rate,
    cost,
    cost_per_applicant,
    calibration_error,
    threshold,
    evaluated_at
from source
