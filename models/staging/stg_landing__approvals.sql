{#- The landed approvals rows, as written (immutable files; dbt only reads them). -#}

with source as (

    select * from {{ source('landing', 'approvals') }}

)

select * from source
