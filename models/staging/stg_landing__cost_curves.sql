{#- The landed cost_curves rows, as written (immutable files; dbt only reads them). -#}

with source as (

    select * from {{ source('landing', 'cost_curves') }}

)

select * from source
