{{ config(materialized='view') }}
{#-
    The model's own decisions, one row per scored request (answered with a decision, in normal
    mode; failover answers are the fallback's, not the model's), with its outcome once one has
    landed (the latest landing wins) and its count window (every var('monitor_count_window') scored
    requests of a version, in ingestion order: mon_requests.scored_count_index). The input of
    mon_group_windows. A view over mon_requests, which numbers the count windows incrementally in
    the same sort as the drift's: a second 10M-row copy of the requests cost more than reading them
    again. batch_at is when mon_requests last (re)wrote the row, outcome_landed_at when its outcome
    landed: mon_group_windows recomputes the windows holding rows newer than its last run by either.
-#}

with requests as (

    select * from {{ ref('mon_requests') }}

),

outcomes as (

    select * from {{ ref('stg_landing__outcomes') }}

),

scored as (

    select
        requests.request_id,
        requests.event_at,
        requests.model_version,
        coalesce(requests.fairness_group, '{{ var("missing_category") }}') as fairness_group,
        requests.probability,
        requests.threshold,
        case when requests.decision = 'manual_review' then 1 else 0 end as flagged,
        outcomes.defaulted,
        outcomes.outcome_at,
        requests.received_at,
        requests.scored_count_index as count_index,
        requests.batch_at,
        outcomes.landed_at as outcome_landed_at

    from requests
    left join outcomes on outcomes.request_id = requests.request_id
    where requests.scored_count_index is not null

)

select * from scored
