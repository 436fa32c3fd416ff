{{ config(
    materialized='incremental',
    unique_key='request_id',
    incremental_strategy='delete+insert',
    on_schema_change='append_new_columns',
) }}
{#-
    The requests drift is measured on: accepted (status 200) requests of model versions that have a
    drift reference (stg_landing__reference_inputs), with their window keys and their inputs
    normalised like the reference's (categorical: trimmed, missing -> var('missing_category')).
    Count windows number these requests per version in event order (event_at, request_id), every
    var('monitor_count_window') of them. Versions without a reference have no rows here.

    Reads mon_requests (the log, de-duplicated once), and incrementally like it: a run reads only the
    rows received since the newest it holds, less var('monitor_incremental_lookback_minutes'); the
    count windows from the new rows' earliest event on are renumbered (macro
    monitoring_count_numbered). Rows are replaced by request_id, so the table always equals a
    full rebuild (`dbt build --full-refresh`); tests/integration/test_monitoring_incremental.py
    holds it to that. batch_at stamps the rows each run (re)numbered: the drift marts downstream
    recompute only the windows holding such rows (macros/drift.sql).
-#}
{%- set lb = var('loan_book') -%}
{%- set inputs = lb.numeric_features + lb.categorical_features -%}
{%- set incremental = drift_incremental_ready(['received_at', 'batch_at']) -%}

with requests as (

    select * from {{ ref('mon_requests') }}
    {{ monitoring_received_since_last_run(incremental) }}

),

referenced_versions as (

    select distinct model_version from {{ ref('stg_landing__reference_inputs') }}

),

accepted as (

    select
        requests.model_version,
        requests.request_id,
        requests.received_at,
        requests.event_at,
        {{ drift_category('requests.fairness_group') }} as fairness_group,
        {%- for name in lb.numeric_features %}
        requests.{{ name }},
        {%- endfor %}
        {%- for name in lb.categorical_features %}
        {{ drift_category('requests.' ~ name) }} as {{ name }}{{ "," if not loop.last }}
        {%- endfor %}

    from requests
    inner join referenced_versions on referenced_versions.model_version = requests.model_version
    where requests.status_code = 200

),

{{ monitoring_count_numbered('accepted', ['received_at', 'fairness_group'] + inputs, incremental) }},

windowed as (

    select
        model_version,
        request_id,
        received_at,
        event_at,
        {{ dbt.date_trunc('hour', 'event_at') }} as hour_floor,
        {{ dbt.date_trunc('day', 'event_at') }} as day_floor,
        count_index,
        fairness_group,
        {%- for name in inputs %}
        {{ name }},
        {%- endfor %}
        {{ drift_batch_stamp() }} as batch_at

    from numbered

)

select * from windowed
