{#- The landed failover events (set / clear), as written; `warehouse.failover` writes them. -#}

with source as (

    select * from {{ source('landing', 'failover_events') }}

)

select * from source
