{#-
    The requests drift is measured on: accepted (status 200) requests of model versions that have a
    drift reference (stg_landing__reference_inputs), with their window keys and their inputs
    normalised like the reference's (categorical: trimmed, missing -> var('missing_category')).
    Count windows number these requests per version in event order (event_at, request_id), every
    var('monitor_count_window') of them. Versions without a reference have no rows here.
-#}
{%- set lb = var('loan_book') -%}

with requests as (

    select * from {{ ref('stg_landing__prediction_log') }}

),

referenced_versions as (

    select distinct model_version from {{ ref('stg_landing__reference_inputs') }}

),

accepted as (

    select requests.*
    from requests
    inner join referenced_versions on referenced_versions.model_version = requests.model_version
    where requests.status_code = 200

),

windowed as (

    select
        model_version,
        request_id,
        event_at,
        {{ dbt.date_trunc('hour', 'event_at') }} as hour_floor,
        {{ dbt.date_trunc('day', 'event_at') }} as day_floor,
        cast(floor((row_number() over (partition by model_version order by event_at, request_id) - 1)
            / {{ var('monitor_count_window') }}) as bigint) as count_index,
        {{ drift_category('fairness_group') }} as fairness_group,
        {%- for name in lb.numeric_features %}
        {{ name }},
        {%- endfor %}
        {%- for name in lb.categorical_features %}
        {{ drift_category(name) }} as {{ name }}{{ "," if not loop.last }}
        {%- endfor %}

    from accepted

)

select * from windowed
