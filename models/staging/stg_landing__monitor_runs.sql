{#- The landed `lendguard monitor` runs, as written; lendguard/monitor.py writes them. -#}

with source as (

    select * from {{ source('landing', 'monitor_runs') }}

)

select * from source
