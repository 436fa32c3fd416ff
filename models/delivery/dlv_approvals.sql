{#- Every approval decision: who decided what about which version, when and why. -#}

with approvals as (

    select * from {{ ref('stg_landing__approvals') }}

)

select * from approvals
