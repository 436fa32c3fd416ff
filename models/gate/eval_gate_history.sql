{#- Every gate check every model version went through (landed by the gate stage). -#}

with results as (

    select * from {{ ref('stg_landing__gate_results') }}

)

select * from results
