{#-
    The operations rollup behind mon_ops_hourly, mon_ops_daily, mon_ops_deployment and
    mon_ops_callers_daily: the same measures over one window kind (see monitoring_windows.sql), per
    model version and per each `group_by` column (caller: the API key's name).
    Error kinds, from the HTTP status: validation = 4xx other than 401/403 (the request was
    wrong), auth = 401/403, server = 5xx, of which withheld = 503 (no model loaded, or the log row
    could not be made durable, so no decision was given); occurred_at_refused = 400s refusing an
    occurred_at out of the API's bounds (macro mon_ops_occurred_at_refused; counted under the request's
    receipt time: the log row keeps no refused time).
-#}
{% macro mon_ops_rollup(kind, group_by=[]) %}

{%- set aggregates -%}
        cast(count(*) as bigint) as requests,
        cast(sum(case when status_code < 400 then 1 else 0 end) as bigint) as accepted,
        cast(sum(case when status_code >= 400 then 1 else 0 end) as bigint) as errors,
        cast(sum(case when status_code between 400 and 499 and status_code not in (401, 403) then 1 else 0 end) as bigint) as errors_validation,
        cast(sum(case when status_code in (401, 403) then 1 else 0 end) as bigint) as errors_auth,
        cast(sum(case when status_code >= 500 then 1 else 0 end) as bigint) as errors_server,
        cast(sum(case when status_code = 503 then 1 else 0 end) as bigint) as errors_withheld,
        cast(sum(case when occurred_at_refused then 1 else 0 end) as bigint) as occurred_at_refused,
        cast(sum(case when decision is not null then 1 else 0 end) as bigint) as scored,
        cast(sum(case when decision = 'manual_review' then 1 else 0 end) as bigint) as positive_predictions,
        cast(sum(case when mode = 'failover' then 1 else 0 end) as bigint) as failover_requests,
        avg(probability) as mean_probability,
        percentile_cont(0.5) within group (order by latency_ms) as latency_p50_ms,
        percentile_cont(0.95) within group (order by latency_ms) as latency_p95_ms,
        percentile_cont(0.99) within group (order by latency_ms) as latency_p99_ms,
        max(latency_ms) as latency_max_ms,
        min(event_at) as first_event_at,
        max(event_at) as last_event_at
{%- endset %}

with requests as (

    select
        request_id,
        event_at,
        coalesce(model_version, '(none)') as model_version,
        coalesce(caller, '') as caller,
        status_code,
        occurred_at_refused,
        decision,
        mode,
        probability,
        latency_ms

    from {{ ref('int_requests') }}

),

windows as (

    {{ monitoring_aggregate('requests', aggregates, kinds=[kind], group_by=group_by) }}

),

rated as (

    select
        *,
        cast(positive_predictions as double) / nullif(scored, 0) as positive_rate,
        cast(errors as double) / requests as error_rate,
        cast(errors_server as double) / requests as server_error_rate,
        cast(errors_validation + errors_auth as double) / requests as client_error_rate,
        case
            when failover_requests = 0 then 'normal'
            when failover_requests = requests then 'failover'
            else 'mixed'
        end as mode

    from windows

)

{% endmacro %}


{#- The measure columns of the ops marts, in order (after each mart's window columns). -#}
{% macro mon_ops_measures() -%}
    model_version,
    requests,
    accepted,
    errors,
    errors_validation,
    errors_auth,
    errors_server,
    errors_withheld,
    occurred_at_refused,
    scored,
    positive_predictions,
    failover_requests,
    mode,
    mean_probability,
    latency_p50_ms,
    latency_p95_ms,
    latency_p99_ms,
    latency_max_ms,
    first_event_at,
    last_event_at,
    positive_rate,
    error_rate,
    server_error_rate,
    client_error_rate
{%- endmacro %}


{#- Whether a prediction-log row is the API's refusal of an occurred_at out of its bounds: a 400 whose
    error holds api.body_checks.OCCURRED_AT_REFUSED (a unit test holds the two spellings equal). -#}
{% macro mon_ops_occurred_at_refused(status_code, error) -%}
    coalesce({{ status_code }} = 400 and contains({{ error }}, 'refused: occurred_at is'), false)
{%- endmacro %}
