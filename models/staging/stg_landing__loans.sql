{#- The current loan book: the newest complete snapshot, role columns renamed, inputs typed, BISG
    proxies (when the contract declares them) under their staged names. -#}
{%- set lb = var('loan_book') -%}

with source as (

    select * from {{ source('landing', 'loans') }}

),

current_snapshot as (

    select * from source
    where snapshot_id = (select max(snapshot_id) from source)

),

renamed as (

    select
        cast({{ lb.id_column }} as {{ dbt.type_string() }}) as loan_id,
        cast({{ lb.date_column }} as date) as application_date,
        {{- fairness_group_column() }}
        case
            when cast({{ lb.outcome_column }} as {{ dbt.type_string() }}) in (
                {%- for value in lb.outcome_positive %}'{{ value }}'{{ ", " if not loop.last }}{% endfor -%}
            ) then 1
            else 0
        end as defaulted,
        {{- loan_input_columns() }}
        {{- proxy_columns() }}
        cast(snapshot_id as {{ dbt.type_string() }}) as snapshot_id

    from current_snapshot

)

select * from renamed
