{#-
    The training set with its three splits, decided in SQL from the loan id (deterministic):
    test (the gate's held-out rows), validation (where the fitted model's thresholds are chosen)
    and train (model selection and the fit).
-#}

with features as (

    select * from {{ ref('feat_loans') }}

),

{%- set split_bucket = hash_bucket('loan_id', 100) %}

split as (

    select
        *,
        case
            when {{ split_bucket }} < {{ var('test_split_percent') }} then 'test'
            when {{ split_bucket }} < {{ var('test_split_percent') }} + {{ var('validation_split_percent') }} then 'validation'
            else 'train'
        end as split

    from features

)

select * from split
