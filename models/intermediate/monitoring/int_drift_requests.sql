{{ config(materialized='view') }}
{#-
    The requests drift is measured on: accepted (status 200) requests of model versions that have a
    drift reference (stg_landing__reference_inputs), with their window keys and their inputs
    normalised like the reference's (categorical: trimmed, missing -> var('missing_category')).
    A view over int_requests, which numbers their count windows (drift_count_index, per version in
    ingestion order, every var('monitor_count_window') of them) in the same
    sort as the output's: copying ten million requests into a second table cost more than
    filtering them again in each drift mart. batch_at stamps the rows the last run (re)numbered:
    the drift marts downstream recompute only the windows holding such rows (macros/drift.sql).
    Versions without a reference have no rows here.
-#}
{%- set lb = var('loan_book') -%}

with requests as (

    select * from {{ ref('int_requests') }}

),

windowed as (

    select
        model_version,
        request_id,
        received_at,
        event_at,
        {{ dbt.date_trunc('hour', 'event_at') }} as hour_floor,
        {{ dbt.date_trunc('day', 'event_at') }} as day_floor,
        drift_count_index as count_index,
        {{ drift_category('fairness_group') }} as fairness_group,
        {%- for name in lb.numeric_features %}
        {{ name }},
        {%- endfor %}
        {%- for name in lb.categorical_features %}
        {{ drift_category(name) }} as {{ name }},
        {%- endfor %}
        batch_at

    from requests
    where drift_count_index is not null

)

select * from windowed
