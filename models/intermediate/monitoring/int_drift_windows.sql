{#-
    Every drift window of every model version with a reference: its kind, bounds and size. Hour and
    day windows span their whole unit; count and deployment windows span their first to last event.
    The drift marts take window_start / window_end from here, so all of them agree.
    first_reported_at / last_changed_at: the first build that held a row of the window, and the last
    that added one (int_requests.batch_at: a row is stamped by the build that first saw it). A closed
    count window's last_changed_at stays; an hour or day window changes when a late row lands in it.
-#}

with requests as (

    select * from {{ ref('int_drift_requests') }}

),

grouped as (

    select
        model_version,
        {{ drift_window_kind() }} as window_kind,
        hour_floor,
        day_floor,
        count_index,
        min(event_at) as first_event_at,
        max(event_at) as last_event_at,
        cast(count(*) as bigint) as n_requests,
        min(batch_at) as first_reported_at,
        max(batch_at) as last_changed_at

    from requests
    group by {{ drift_grouping_sets(['model_version']) }}

),

bounded as (

    select
        model_version,
        window_kind,
        hour_floor,
        day_floor,
        count_index,
        {{ drift_window_key() }} as window_key,
        case window_kind when 'count' then count_index when 'deployment' then 0 end as window_index,
        case window_kind
            when 'hour' then hour_floor
            when 'day' then day_floor
            else first_event_at
        end as window_start,
        case window_kind
            when 'hour' then {{ dbt.dateadd('hour', 1, 'hour_floor') }}
            when 'day' then {{ dbt.dateadd('day', 1, 'day_floor') }}
            else last_event_at
        end as window_end,
        n_requests,
        first_reported_at,
        last_changed_at

    from grouped

)

select * from bounded
