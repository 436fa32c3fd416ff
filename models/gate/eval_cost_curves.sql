{#- Cost against the common false-positive rate: how flat the chosen optimum is. -#}

with curves as (

    select * from {{ ref('stg_landing__cost_curves') }}

)

select * from curves
