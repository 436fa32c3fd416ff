{#- Every scoring request the API logged, with the loan-book group column given its role name and,
    for a book with BISG proxies, the area and the surname's Census evidence (never the names).
    The one staging model left a view (the others are tables): int_requests copies its rows
    incrementally, reading only the files received since its last run through this view's filter
    pushdown, and a table would copy the whole log (raw bodies included) on every build. A view that
    reads files is not published (warehouse/publish.py): the snapshot's copy of these rows is int_requests. -#}
{{ config(materialized='view') }}
{%- set lb = var('loan_book') -%}

with source as (

    select * from {{ source('landing', 'prediction_log') }}

),

{#- Each row is landed once, but a log compaction killed between writing its merged file and
    removing its sources leaves rows in two files until the next compaction: keep one copy. The
    copies are the same row, received_at included; partitioning by it too lets a filter on
    received_at (the incremental monitoring marts' cutoff) reach the Parquet scan, which then skips
    the files and row groups received before it, instead of numbering the whole log first. The
    copies are identical, so which one is kept does not matter: no order by (a sort it would cost). -#}
numbered as (

    select
        source.*,
        row_number() over (partition by request_id, received_at order by received_at) as copy_number
    from source

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
        {{ mon_ops_occurred_at_refused('status_code', 'error') }} as occurred_at_refused,
        model_name,
        model_version,
        threshold,
        probability,
        decision,
        mode,
        latency_ms,
        batch_id,
        batch_index,
        batch_size,
        coalesce(caller, '') as caller,
        idempotency_key,
        idempotency_fingerprint,
        unknown_categories,
        {{- fairness_group_column() }}
        {{- loan_input_columns() }}
        {{- logged_bisg_evidence_columns() }}
        raw_body,
        log_note

    from numbered
    where copy_number = 1

)

select * from renamed
