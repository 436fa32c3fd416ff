{{ config(
    materialized='incremental',
    unique_key='request_id',
    incremental_strategy=incremental_appending_strategy(),
    on_schema_change='append_new_columns',
) }}
{#-
    Every logged request, with what the ops, output and drift marts read (the loan inputs included)
    and both count-window numberings: drift_count_index over the requests drift is measured on
    (accepted, status 200, of a version with a drift reference) and scored_count_index over the
    model's own decisions (answered in normal mode with a probability). Copied once from the landing
    zone and then appended to: a run reads only the log rows received since the last one (minus
    var('monitor_incremental_lookback_minutes'), for files another API replica landed late), keeps
    the ones it has not seen (by request_id) and numbers them after every row it already holds, in
    ingestion order (macro monitoring_count_numbered): a row, once numbered, is never rewritten, so
    a closed count window never changes, whatever arrives later. batch_at is the build that first
    saw the row (what the incremental marts recompute from, and the windows' first_reported_at /
    last_changed_at). The only monitoring model that reads the log, and the only one that sorts
    every request: the staging view's de-duplication runs once per build, and both numberings share
    one sort (int_drift_requests and int_scored_requests are views over this table).
    `dbt build --full-refresh` rebuilds it in receipt order.
    A book with BISG proxies adds the logged evidence (macro logged_bisg_evidence_columns: the area
    and the surname's Census row, never a name), which int_request_group_probabilities reads.
-#}

{%- set lb = var('loan_book') -%}
{%- set inputs = lb.numeric_features + lb.categorical_features -%}
{%- set evidence = logged_bisg_evidence_names() -%}
{%- set columns = ['received_at', 'status_code', 'decision', 'mode', 'probability', 'threshold', 'latency_ms',
                   'fairness_group', 'caller', 'occurred_at_refused'] + inputs + evidence -%}
{#- A table built before it held the inputs and the numberings is rebuilt whole (every row replaces itself). -#}
{%- set incremental = drift_incremental_ready(['received_at', 'caller', 'occurred_at_refused', 'drift_count_index', 'scored_count_index', 'batch_at'] + inputs + evidence) -%}

with requests as (

    select * from {{ ref('stg_landing__prediction_log') }}
    {{ monitoring_received_since_last_run(incremental) }}

),

referenced_versions as (

    select distinct model_version from {{ ref('stg_landing__reference_inputs') }}

),

slim as (

    select
        request_id,
        event_at,
        model_version,
        {%- for name in columns %}
        {{ name }}{{ "," if not loop.last }}
        {%- endfor %}

    from requests

),

{{ monitoring_count_numbered('slim', columns, incremental, {
    'drift_count_index':
        "status_code = 200 and model_version in (select model_version from referenced_versions)",
    'scored_count_index':
        "status_code < 400 and decision is not null and mode = 'normal' and probability is not null"
        ~ " and model_version is not null",
}) }},

final as (

    select
        request_id,
        received_at,
        event_at,
        model_version,
        status_code,
        decision,
        mode,
        probability,
        threshold,
        latency_ms,
        fairness_group,
        caller,
        occurred_at_refused,
        {%- for name in inputs + evidence %}
        {{ name }},
        {%- endfor %}
        drift_count_index,
        scored_count_index,
        {{ drift_batch_stamp() }} as batch_at

    from numbered

)

select * from final
