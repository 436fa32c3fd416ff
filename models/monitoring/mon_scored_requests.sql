{{ config(
    materialized='incremental',
    unique_key='request_id',
    incremental_strategy='delete+insert',
    on_schema_change='append_new_columns',
) }}
{#-
    The model's own decisions, one row per scored request (answered with a decision, in normal
    mode; failover answers are the fallback's, not the model's), with its outcome once one has
    landed and its count window (every var('monitor_count_window') scored requests of a version, in
    event order). The input of every output and fairness mart.
    Incremental like mon_drift_requests: a run reads the requests received since the newest it
    holds (less the lookback), renumbers the count windows from their earliest event on (macro
    monitoring_count_numbered), and re-emits the rows whose outcome landed or changed since. batch_at
    stamps every row a run (re)wrote, so mon_group_windows recomputes only the windows holding one.
-#}
{%- set incremental = drift_incremental_ready(['received_at', 'count_index', 'batch_at']) -%}
{%- set decision_columns = ['received_at', 'fairness_group', 'probability', 'threshold', 'flagged'] -%}

with requests as (

    select * from {{ ref('mon_requests') }}
    {{ monitoring_received_since_last_run(incremental) }}

),

outcomes as (

    select * from {{ ref('stg_landing__outcomes') }}

),

decisions as (

    select
        request_id,
        received_at,
        event_at,
        model_version,
        coalesce(fairness_group, '{{ var("missing_category") }}') as fairness_group,
        probability,
        threshold,
        case when decision = 'manual_review' then 1 else 0 end as flagged

    from requests
    where status_code < 400
        and decision is not null
        and mode = 'normal'
        and probability is not null
        and model_version is not null

),

{{ monitoring_count_numbered('decisions', decision_columns, incremental) }},

{%- if incremental %}

{#- Rows built before whose outcome has landed (or changed) since: same window, new outcome. -#}
outcome_updates as (

    select existing.model_version, existing.request_id, existing.event_at,
        {%- for column in decision_columns %}
        existing.{{ column }},
        {%- endfor %}
        existing.count_index

    from {{ this }} as existing
    inner join outcomes on outcomes.request_id = existing.request_id
    where (existing.defaulted is distinct from outcomes.defaulted
            or existing.outcome_at is distinct from outcomes.outcome_at)
        and not exists (select 1 from numbered where numbered.request_id = existing.request_id)

),

changed as (

    select * from numbered
    union all
    select * from outcome_updates

),

{%- else %}

changed as (

    select * from numbered

),

{%- endif %}

scored as (

    select
        changed.request_id,
        changed.event_at,
        changed.model_version,
        changed.fairness_group,
        changed.probability,
        changed.threshold,
        changed.flagged,
        outcomes.defaulted,
        outcomes.outcome_at,
        changed.received_at,
        changed.count_index,
        {{ drift_batch_stamp() }} as batch_at

    from changed
    left join outcomes on outcomes.request_id = changed.request_id

)

select * from scored
