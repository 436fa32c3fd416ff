{#- Operations per hour of event time and model version: volume, errors, decisions, latency. -#}

with requests as (

    select * from {{ ref('stg_landing__prediction_log') }}

),

hourly as (

    select
        {{ dbt.date_trunc('hour', 'event_at') }} as hour_start,
        coalesce(model_version, '(none)') as model_version,
        cast(count(*) as bigint) as requests,
        cast(sum(case when status_code >= 400 then 1 else 0 end) as bigint) as errors,
        cast(sum(case when status_code < 400 then 1 else 0 end) as bigint) as scored,
        cast(sum(case when decision = 'manual_review' then 1 else 0 end) as bigint) as positive_predictions,
        cast(sum(case when mode = 'failover' then 1 else 0 end) as bigint) as failover_requests,
        avg(probability) as mean_probability,
        percentile_cont(0.5) within group (order by latency_ms) as latency_p50_ms,
        percentile_cont(0.95) within group (order by latency_ms) as latency_p95_ms,
        percentile_cont(0.99) within group (order by latency_ms) as latency_p99_ms,
        max(latency_ms) as latency_max_ms

    from requests
    group by 1, 2

),

rated as (

    select
        *,
        cast(positive_predictions as double) / nullif(scored, 0) as positive_rate,
        cast(errors as double) / requests as error_rate

    from hourly

)

select * from rated
