{#- Every evaluation on a test split: per model version, role, policy and group. -#}

with evaluations as (

    select * from {{ ref('stg_landing__evaluations') }}

)

select * from evaluations
