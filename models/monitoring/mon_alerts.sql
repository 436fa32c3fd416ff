{#-
    The open alerts: one row per breach this build measures (mon_alert_history's open rows), with
    when it was first and last seen. The tests tagged `monitor` fail on these rows (warn rows as
    warnings, critical rows as errors), and `lendguard monitor` notifies each alert once and
    switches the API to failover on new critical ones.
-#}

with history as (

    select * from {{ ref('mon_alert_history') }}

),

open_alerts as (

    select
        alert_id,
        check_name,
        subject,
        model_version,
        window_kind,
        window_key,
        window_start,
        window_end,
        value,
        threshold,
        severity,
        details,
        first_seen_at,
        last_seen_at

    from history
    where status = 'open'

)

select * from open_alerts
