{#- The landed evaluations rows, as written (immutable files; dbt only reads them). -#}

with source as (

    select * from {{ source('landing', 'evaluations') }}

)

select * from source
