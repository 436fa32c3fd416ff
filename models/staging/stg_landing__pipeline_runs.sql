{#- The landed pipeline_runs rows, as written (immutable files; dbt only reads them). -#}

with source as (

    select * from {{ source('landing', 'pipeline_runs') }}

)

select * from source
