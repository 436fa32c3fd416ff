{#- The training set with its held-out split, decided in SQL from the loan id (deterministic). -#}

with features as (

    select * from {{ ref('feat_loans') }}

),

split as (

    select
        *,
        case
            when {{ hash_bucket('loan_id', 100) }} < {{ var('test_split_percent') }} then 'test'
            else 'train'
        end as split

    from features

)

select * from split
