{#- The training inputs of each model version (drift references), typed like the prediction log's. -#}
{%- set lb = var('loan_book') -%}

with source as (

    select * from {{ source('landing', 'reference_inputs') }}

),

renamed as (

    select
        cast(model_version as {{ dbt.type_string() }}) as model_version,
        {{- fairness_group_column() }}
        {{- loan_input_columns() }}
        true as is_reference

    from source

)

select * from renamed
