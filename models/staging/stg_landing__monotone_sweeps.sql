{#- The landed monotone_sweeps rows, as written (immutable files; dbt only reads them). -#}

with source as (

    select * from {{ source('landing', 'monotone_sweeps') }}

)

select * from source
