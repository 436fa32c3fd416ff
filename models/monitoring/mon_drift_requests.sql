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

    Incremental (like mon_requests): a run reads only the log rows received since the newest it
    holds, less var('monitor_incremental_lookback_minutes'). A new row may fall before rows already
    numbered (a late file, an application's own timestamp), so per version every row from the new
    rows' earliest event on is renumbered: the rows before it keep their numbers, and the count
    continues from how many they are. Rows are replaced by request_id, so the table always equals a
    full rebuild (`dbt build --full-refresh`); tests/integration/test_monitoring_incremental.py
    holds it to that. batch_at stamps the rows each run (re)numbered: the drift marts downstream
    recompute only the windows holding such rows (macros/drift.sql).
-#}
{%- set lb = var('loan_book') -%}
{%- set inputs = lb.numeric_features + lb.categorical_features -%}
{%- set incremental = drift_incremental_ready(['received_at', 'batch_at']) -%}

with requests as (

    select * from {{ ref('stg_landing__prediction_log') }}
    {%- if incremental %}
    {#- A literal cutoff, so the Parquet scan can skip files and row groups by their statistics. -#}
    {%- set newest = run_query("select cast(max(received_at) as varchar) from " ~ this).columns[0].values()[0] if execute else none %}
    {%- if newest %}
    where received_at > cast('{{ newest }}' as timestamp) - interval '{{ var("monitor_incremental_lookback_minutes") }} minutes'
    {%- endif %}
    {%- endif %}

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

{%- if incremental %}

restart as (

    select model_version, min(event_at) as from_event_at
    from accepted
    group by model_version

),

carried as (

    {#- Rows already numbered at or after the restart point: renumbered with the new ones. -#}
    select
        existing.model_version,
        existing.request_id,
        existing.received_at,
        existing.event_at,
        existing.fairness_group,
        {%- for name in inputs %}
        existing.{{ name }}{{ "," if not loop.last }}
        {%- endfor %}

    from {{ this }} as existing
    inner join restart on restart.model_version = existing.model_version
    where existing.event_at >= restart.from_event_at
        and not exists (select 1 from accepted where accepted.request_id = existing.request_id)

),

offsets as (

    select existing.model_version, count(*) as rows_before
    from {{ this }} as existing
    inner join restart on restart.model_version = existing.model_version
    where existing.event_at < restart.from_event_at
    group by existing.model_version

),

renumbered as (

    select * from accepted
    union all
    select * from carried

),

{%- else %}

renumbered as (

    select * from accepted

),

{%- endif %}

windowed as (

    select
        renumbered.model_version,
        renumbered.request_id,
        renumbered.received_at,
        renumbered.event_at,
        {{ dbt.date_trunc('hour', 'renumbered.event_at') }} as hour_floor,
        {{ dbt.date_trunc('day', 'renumbered.event_at') }} as day_floor,
        cast(floor((
            {%- if incremental %}coalesce(offsets.rows_before, 0) + {% endif -%}
            row_number() over (partition by renumbered.model_version order by renumbered.event_at, renumbered.request_id) - 1)
            / {{ var('monitor_count_window') }}) as bigint) as count_index,
        renumbered.fairness_group,
        {%- for name in inputs %}
        renumbered.{{ name }},
        {%- endfor %}
        {{ drift_batch_stamp() }} as batch_at

    from renumbered
    {%- if incremental %}
    left join offsets on offsets.model_version = renumbered.model_version
    {%- endif %}

)

select * from windowed
