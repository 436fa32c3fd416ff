{#-
    The training set with its three splits, decided in SQL from the loan id (deterministic):
    test (the gate's held-out rows), validation (where the fitted model's thresholds are chosen)
    and train (model selection and the fit).
-#}

with features as (

    select * from {{ ref('feat_loans') }}

),

bucketed as (

    select
        *,
        {{ hash_bucket('loan_id', 100) }} as split_bucket

    from features

),

split as (

    select
        * exclude (split_bucket),
        case
            when split_bucket < {{ var('test_split_percent') }} then 'test'
            when split_bucket < {{ var('test_split_percent') }} + {{ var('validation_split_percent') }} then 'validation'
            else 'train'
        end as split

    from bucketed

)

select * from split
