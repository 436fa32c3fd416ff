{#- The champion's decisions on the loan book: its probability against its group's threshold. -#}

with scored as (

    select * from {{ ref('score_loans') }}

),

thresholds as (

    select * from {{ ref('eval_thresholds') }}
    where policy = '{{ var("deployed_policy") }}'

),

decided as (

    select
        scored.loan_id,
        scored.fairness_group,
        scored.model_version,
        scored.probability,
        coalesce(own.threshold, fallback.threshold) as threshold,
        case
            when scored.probability >= coalesce(own.threshold, fallback.threshold) then 'manual_review'
            else 'auto_approve'
        end as decision

    from scored
    left join thresholds as own
        on own.model_version = scored.model_version and own.group_name = scored.fairness_group
    left join thresholds as fallback
        on fallback.model_version = scored.model_version and fallback.group_name = '__default__'

)

select * from decided
