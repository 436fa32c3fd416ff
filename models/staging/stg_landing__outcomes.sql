{#- Loan outcomes by request id; when an outcome was landed twice for a request, the latest wins. -#}

with source as (

    select * from {{ source('landing', 'outcomes') }}

),

ranked as (

    select
        request_id,
        cast(defaulted as integer) as defaulted,
        outcome_at,
        batch_id,
        landed_at,
        row_number() over (
            partition by request_id order by landed_at desc, outcome_at desc, batch_id desc
        ) as recency

    from source

),

latest as (

    select
        request_id,
        defaulted,
        outcome_at,
        batch_id,
        landed_at

    from ranked
    where recency = 1

)

select * from latest
