{#- Every declared-monotone input of every evaluated model version, swept over its grid. -#}

with sweeps as (

    select * from {{ ref('stg_landing__monotone_sweeps') }}

)

select * from sweeps
