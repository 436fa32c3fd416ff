{#- The landed thresholds rows, as written (immutable files; dbt only reads them). -#}

with source as (

    select * from {{ source('landing', 'thresholds') }}

)

select * from source
