{#- Where each registered version came from; a version landed twice keeps its latest row. -#}

with source as (

    select * from {{ source('landing', 'model_lineage') }}

),

ranked as (

    select
        *,
        row_number() over (partition by model_version order by registered_at desc) as recency

    from source

),

latest as (

    select
        model_version,
        run_id,
        git_commit,
        training_data_rows,
        training_data_sha256,
        dbt_manifest_sha256,
        loan_book_snapshot,
        loan_book_contract,
        registered_at

    from ranked
    where recency = 1

)

select * from latest
