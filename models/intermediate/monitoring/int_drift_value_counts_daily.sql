{{ config(
    materialized='incremental',
    unique_key=['model_version', 'window_key'],
    incremental_strategy=incremental_replacing_strategy(),
    partition_by=incremental_replacing_partitions(['model_version', 'window_key']),
    on_schema_change='append_new_columns',
) }}
{#-
    How often each value of each numeric input was sent, per model version and day of event time:
    the partial counts the KS test of the day and deployment windows adds up (mon_drift_numeric).
    Counts add up exactly, so the deployment's value counts are the sum of its days', and an
    incremental run needs no pass over every request for them. The inputs take a few thousand
    distinct values a day, so this is small next to the requests.
    Incremental: only the days holding requests numbered since the last run (int_drift_requests
    .batch_at) are recounted, and replaced whole.
-#}
{%- set since = drift_built_through() -%}

with all_requests as (

    select * from {{ ref('int_drift_requests') }}

),

{%- if since %}

touched as (

    {{ drift_touched_windows('all_requests', since, ['day']) }}

),

requests as (

    select * from all_requests
    where {{ drift_in_touched_windows('all_requests', 'touched', ['day'],
                                      drift_changed_from(ref('int_drift_requests'), since)) }}

),

{%- else %}

requests as (

    select * from all_requests

),

{%- endif %}

production_numeric as (

    {{ drift_numeric_long('requests') }}

),

counted as (

    {#- Grouped by the input's position, not its name: integer keys hash faster. #}
    select
        model_version,
        {{ drift_window_key(['day']) }} as window_key,
        {{ drift_feature_name('feature_index') }} as feature,
        value,
        cast(count(*) as bigint) as n_at,
        (select max(batch_at) from all_requests) as batch_at

    from production_numeric
    group by model_version, day_floor, feature_index, value

)

select * from counted
