{#- The decision thresholds of every model version, per policy and group. -#}

with thresholds as (

    select * from {{ ref('stg_landing__thresholds') }}

)

select * from thresholds
