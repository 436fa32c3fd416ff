{#- The landed gate_results rows, as written (immutable files; dbt only reads them). -#}

with source as (

    select * from {{ source('landing', 'gate_results') }}

)

select * from source
