{#- The current loan book: the newest complete snapshot, role columns renamed, inputs typed. -#}
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
        cast({{ lb.id_column }} as varchar) as loan_id,
        cast({{ lb.date_column }} as date) as application_date,
        cast({{ lb.group_column }} as varchar) as fairness_group,
        case
            when cast({{ lb.outcome_column }} as varchar) in (
                {%- for value in lb.outcome_positive %}'{{ value }}'{{ ", " if not loop.last }}{% endfor -%}
            ) then 1
            else 0
        end as defaulted,
        {{- loan_input_columns() }}
        cast(snapshot_id as varchar) as snapshot_id

    from current_snapshot

)

select * from renamed
