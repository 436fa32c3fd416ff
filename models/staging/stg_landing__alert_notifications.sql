{#- Monitoring alerts as first notified (one row per alert), as written; lendguard/monitor.py writes them. -#}

with source as (

    select * from {{ source('landing', 'alert_notifications') }}

)

select * from source
