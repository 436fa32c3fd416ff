{#- The loan book as model inputs: features from the shared macro, plus the role columns. -#}

with staged as (

    select * from {{ ref('stg_landing__loans') }}

),

features as (

    select
        loan_id,
        application_date,
        fairness_group,
        defaulted,
        snapshot_id,
        {{ loan_feature_columns() }}

    from staged

)

select * from features
