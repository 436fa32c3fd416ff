{{ config(
    materialized='incremental',
    unique_key=['model_version', 'window_kind', 'window_key'],
    incremental_strategy=incremental_replacing_strategy(),
    partition_by=incremental_replacing_partitions(['model_version', 'window_kind', 'window_key']),
    on_schema_change='append_new_columns',
) }}
{#-
    Decisions per model version, window (hour, day, count, deployment), method (self_reported,
    bisg: how group membership is known, int_scored_requests) and group: weighted counts, the
    calibrated probabilities' expectations and, where outcomes have landed, the confusion matrix.
    mon_positive_rates, mon_fairness_estimated and mon_realised_quality read it, so all three
    share the same windows. Count windows are int_scored_requests.count_index; the deployment adds
    up its count windows (they partition its requests), so a full build and an incremental run sum
    the same partial aggregates. Every measure is a count or a sum, so partial aggregates add up.
    first_reported_at / last_changed_at: the first build that held a request of the window (of the
    group) and the last that added one (int_requests.batch_at); a closed count window's never moves.
    Incremental: only the windows holding requests int_requests (re)wrote since the last run
    (batch_at), or whose outcome landed since (outcome_landed_at, less the lookback), are
    recomputed, and replaced whole (delete+insert on the window), like the drift marts.
-#}
{#- Each measure: its SQL over requests, and whether it is a count (bigint) or a sum (double).
    Every measure but n is weighted by the row's group membership (int_scored_requests.weight: 1 for
    self_reported, the BISG probability for bisg), so a group's FPR is sum(w·FP) / sum(w·[repaid]);
    with weights 1 each weighted sum is the count it was (integers, exact in a double). weight and
    weight_squares (and their repaid / defaulted parts) give Kish's effective sample size
    (sum w)^2 / sum w^2, which the intervals downstream use: equal to n when every weight is 1. -#}
{%- set measures = [
    ('n', 'count(*)', 'bigint'),
    ('weight', 'sum(weight)', 'double'),
    ('weight_squares', 'sum(weight * weight)', 'double'),
    ('positives', 'sum(weight * flagged)', 'double'),
    ('expected_positives', 'sum(weight * probability)', 'double'),
    ('expected_negatives', 'sum(weight * (1 - probability))', 'double'),
    ('expected_false_positives', 'sum(case when flagged = 1 then weight * (1 - probability) else 0 end)', 'double'),
    ('n_with_outcome', 'sum(case when defaulted is not null then weight else 0 end)', 'double'),
    ('defaults', 'coalesce(sum(weight * defaulted), 0)', 'double'),
    ('true_positives', 'sum(case when defaulted = 1 and flagged = 1 then weight else 0 end)', 'double'),
    ('false_positives', 'sum(case when defaulted = 0 and flagged = 1 then weight else 0 end)', 'double'),
    ('false_negatives', 'sum(case when defaulted = 1 and flagged = 0 then weight else 0 end)', 'double'),
    ('true_negatives', 'sum(case when defaulted = 0 and flagged = 0 then weight else 0 end)', 'double'),
    ('repaid_weight_squares', 'sum(case when defaulted = 0 then weight * weight else 0 end)', 'double'),
    ('defaulted_weight_squares', 'sum(case when defaulted = 1 then weight * weight else 0 end)', 'double'),
] -%}
{%- set kinds = ['hour', 'day', 'count'] -%}
{%- set since = drift_built_through() -%}
{%- set changed_from = drift_changed_from(ref('int_scored_requests'), since, outcomes=true) if since else none -%}

with scored as (

    select
        *,
        {{ dbt.date_trunc('hour', 'event_at') }} as hour_floor,
        {{ dbt.date_trunc('day', 'event_at') }} as day_floor

    from {{ ref('int_scored_requests') }}

),

{%- if since %}

touched as (

    {{ drift_touched_windows('scored', since, outcomes=true) }}

),

{%- endif %}

{%- for kind in kinds %}

{{ kind }}_windows as (

    select
        model_version,
        '{{ kind }}' as window_kind,
        {{ drift_window_key([kind]) }} as window_key,
        {%- if kind == 'count' %}
        count_index as window_index,
        {#- A count window's bounds are its first and last event over every group. #}
        min(min(event_at)) over (partition by model_version, count_index) as window_start,
        max(max(event_at)) over (partition by model_version, count_index) as window_end,
        {%- else %}
        cast(null as bigint) as window_index,
        {{ kind }}_floor as window_start,
        {{ dbt.dateadd(kind, 1, kind ~ '_floor') }} as window_end,
        {%- endif %}
        method,
        fairness_group,
        min(batch_at) as first_reported_at,
        max(batch_at) as last_changed_at,
        {%- for name, expression, type in measures %}
        cast({{ expression }} as {{ type }}) as {{ name }}{{ "," if not loop.last }}
        {%- endfor %}

    from scored
    {%- if since %}
    where {{ drift_in_touched_windows('scored', 'touched', [kind], changed_from) }}
    {%- endif %}
    group by model_version, {{ 'count_index' if kind == 'count' else kind ~ '_floor' }}, method, fairness_group

),

{%- endfor %}

count_windows_of_touched_versions as (

    select * from count_windows
    {%- if since %}
    union all
    {# The count windows built before and not recomputed now, of the versions touched. #}
    select {% for column in ['model_version', 'window_kind', 'window_key', 'window_index', 'window_start', 'window_end', 'method', 'fairness_group', 'first_reported_at', 'last_changed_at'] %}built.{{ column }}, {% endfor %}
        {%- for name, expression, type in measures %}
        built.{{ name }}{{ "," if not loop.last }}
        {%- endfor %}
    from {{ this }} as built
    where built.window_kind = 'count'
        and built.model_version in (select model_version from touched where window_kind = 'deployment')
        and not exists (
            select 1 from touched
            where touched.model_version = built.model_version and touched.window_kind = 'count'
                and touched.window_key = built.window_key
        )
    {%- endif %}

),

deployment_windows as (

    select
        model_version,
        'deployment' as window_kind,
        cast(0 as bigint) as window_key,
        cast(0 as bigint) as window_index,
        min(min(window_start)) over (partition by model_version) as window_start,
        max(max(window_end)) over (partition by model_version) as window_end,
        method,
        fairness_group,
        min(first_reported_at) as first_reported_at,
        max(last_changed_at) as last_changed_at,
        {%- for name, expression, type in measures %}
        cast(sum({{ name }}) as {{ type }}) as {{ name }}{{ "," if not loop.last }}
        {%- endfor %}

    from count_windows_of_touched_versions
    group by model_version, method, fairness_group

),

windows as (

    {%- for kind in kinds + ['deployment'] %}
    select
        model_version,
        window_kind,
        window_index,
        window_start,
        window_end,
        method,
        fairness_group,
        {%- for name, expression, type in measures %}
        {{ name }},
        {%- endfor %}
        window_key,
        first_reported_at,
        last_changed_at,
        {{ drift_batch_stamp() }} as batch_at
    from {{ kind }}_windows
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}

)

select * from windows
