{{ config(
    materialized='incremental',
    unique_key='request_id',
    incremental_strategy='delete+insert',
    on_schema_change='append_new_columns',
) }}
{#-
    Every logged request, with what the ops, output and drift marts read (the loan inputs included,
    for mon_drift_requests), copied once from the landing zone and then appended to: a run reads only
    the log rows received since the last one (minus var('monitor_incremental_lookback_minutes'), for
    files another API replica landed late; rows seen twice replace themselves by request_id).
    The only monitoring model that reads the log, so the staging view's de-duplication of every row
    runs once per build, not once per consumer. `dbt build --full-refresh` rebuilds it.
-#}

{%- set inputs = var('loan_book').numeric_features + var('loan_book').categorical_features -%}
{#- A table built before it held the inputs is rebuilt whole (every row replaces itself). -#}
{%- set incremental = drift_incremental_ready(['received_at'] + inputs) -%}

with requests as (

    select * from {{ ref('stg_landing__prediction_log') }}
    {{ monitoring_received_since_last_run(incremental) }}

),

slim as (

    select
        request_id,
        received_at,
        event_at,
        model_version,
        status_code,
        decision,
        mode,
        probability,
        threshold,
        latency_ms,
        fairness_group,
        {%- for name in inputs %}
        {{ name }}{{ "," if not loop.last }}
        {%- endfor %}

    from requests

)

select * from slim
