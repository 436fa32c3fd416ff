{{ config(materialized='table') }}
{#-
    The model's own decisions, one row per scored request (answered with a decision, in normal
    mode; failover answers are the fallback's, not the model's), with its outcome once one has
    landed. The input of every output and fairness mart.
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
        outcomes.outcome_at

    from requests
    left join outcomes on outcomes.request_id = requests.request_id
    where requests.status_code < 400
        and requests.decision is not null
        and requests.mode = 'normal'
        and requests.probability is not null
        and requests.model_version is not null

)

select * from scored
