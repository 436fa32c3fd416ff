{{ config(
    materialized='incremental',
    unique_key='alert_id',
    incremental_strategy=incremental_replacing_strategy(),
    partition_by=incremental_replacing_partitions('alert_id'),
    full_refresh=false,
    on_schema_change='append_new_columns',
) }}
{#-
    Every alert monitoring ever raised, one row per alert_id (one breach: check, subject, model
    version, window kind, window key), with its state: `open` while this build measures it
    (mon_alert_breaches), `resolved` once it is gone (more data in a window still open brought the value back within its limit).
    Each build updates the open ones (value, threshold, severity and details as last measured,
    last_seen_at) and marks the vanished ones resolved (resolved_at); a resolved alert that comes
    back opens again under its id (it was notified already, so it is not notified twice). Never
    rebuilt whole (full_refresh=false): what was raised stays on record, like the notifications
    (alert_notifications in the landing zone).
-#}
{%- set stamp = drift_batch_stamp() -%}
{%- set columns = ['check_name', 'subject', 'model_version', 'window_kind', 'window_key', 'window_start',
                   'window_end', 'value', 'threshold', 'severity', 'details'] -%}

with current_alerts as (

    select * from {{ ref('mon_alert_breaches') }}

),

{%- if is_incremental() %}

known as (

    select * from {{ this }}

),

{%- endif %}

seen as (

    select
        current_alerts.alert_id,
        {%- for name in columns %}
        current_alerts.{{ name }},
        {%- endfor %}
        'open' as status,
        {%- if is_incremental() %}
        coalesce(known.first_seen_at, {{ stamp }}) as first_seen_at,
        {%- else %}
        {{ stamp }} as first_seen_at,
        {%- endif %}
        {{ stamp }} as last_seen_at,
        cast(null as timestamp) as resolved_at

    from current_alerts
    {%- if is_incremental() %}
    left join known on known.alert_id = current_alerts.alert_id
    {%- endif %}

)

{%- if is_incremental() %},

resolved as (

    select
        known.alert_id,
        {%- for name in columns %}
        known.{{ name }},
        {%- endfor %}
        'resolved' as status,
        known.first_seen_at,
        known.last_seen_at,
        {{ stamp }} as resolved_at

    from known
    where known.status = 'open'
        and not exists (select 1 from current_alerts where current_alerts.alert_id = known.alert_id)

)

select * from seen
union all
select * from resolved

{%- else %}

select * from seen

{%- endif %}
