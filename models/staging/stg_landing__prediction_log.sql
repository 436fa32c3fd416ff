{#- Every scoring request the API logged, with the loan-book group column given its role name. -#}
{%- set lb = var('loan_book') -%}

with source as (

    select * from {{ source('landing', 'prediction_log') }}

),

renamed as (

    select
        request_id,
        application_id,
        received_at,
        occurred_at,
        coalesce(occurred_at, received_at) as event_at,
        endpoint,
        status_code,
        error,
        model_name,
        model_version,
        threshold,
        probability,
        decision,
        mode,
        latency_ms,
        cast({{ lb.group_column }} as varchar) as fairness_group,
        {{- loan_input_columns() }}
        raw_body

    from source

)

select * from renamed
