{{ config(
    materialized='incremental',
    unique_key='request_id',
    incremental_strategy='delete+insert',
    on_schema_change='append_new_columns',
) }}
{#-
    Every logged request, slimmed to what the ops and output marts read, copied once from the
    landing zone and then appended to: a run reads only the log rows received since the last one
    (minus var('monitor_incremental_lookback_minutes'), for files another API replica landed late;
    rows seen twice replace themselves by request_id). `dbt build --full-refresh` rebuilds it.
-#}

with requests as (

    select * from {{ ref('stg_landing__prediction_log') }}
    {%- if is_incremental() %}
    {#- A literal cutoff, so the Parquet scan can skip files and row groups by their statistics. -#}
    {%- set newest = run_query("select cast(max(received_at) as varchar) from " ~ this).columns[0].values()[0] if execute else none %}
    {%- if newest %}
    where received_at > cast('{{ newest }}' as timestamp) - interval '{{ var("monitor_incremental_lookback_minutes") }} minutes'
    {%- endif %}
    {%- endif %}

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
        fairness_group

    from requests

)

select * from slim
