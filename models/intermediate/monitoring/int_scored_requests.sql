{{ config(materialized='view') }}
{#-
    The model's own decisions, one row per scored request (answered with a decision, in normal
    mode; failover answers are the fallback's, not the model's) and group it counts for, with its
    outcome once one has landed (the latest landing wins) and its count window (every
    var('monitor_count_window') scored requests of a version, in ingestion order:
    int_requests.scored_count_index). The input of int_group_windows. A view over int_requests,
    which numbers the count windows incrementally in the same sort as the drift's: a second 10M-row
    copy of the requests cost more than reading them again. batch_at is when int_requests last
    (re)wrote the row, outcome_landed_at when its outcome landed: int_group_windows recomputes the
    windows holding rows newer than its last run by either.

    How group membership is known (`method`), and each row's `weight`, the request's membership of
    the group: `self_reported` (a book with a group column) one row per request, its declared group,
    weight 1; `bisg` (a book with proxies) one row per request and group with a positive BISG
    probability (int_request_group_probabilities), weight that probability. A book with both has
    both, so every mart downstream reports both and they can be compared.
-#}
{%- set lb = var('loan_book') -%}
{%- set methods = [] -%}
{%- if lb.group_column is not none %}{% do methods.append('self_reported') %}{% endif -%}
{%- if 'proxy_surname' in (lb.proxies or {}) %}{% do methods.append('bisg') %}{% endif -%}

with requests as (

    select * from {{ ref('int_requests') }}
    where scored_count_index is not null

),

outcomes as (

    select * from {{ ref('stg_landing__outcomes') }}

),

{%- if 'bisg' in methods %}

bisg as (

    select * from {{ ref('int_request_group_probabilities') }}
    where probability > 0

),

{%- endif %}

scored as (

    {%- for method in methods %}
    select
        requests.request_id,
        requests.event_at,
        requests.model_version,
        '{{ method }}' as method,
        {%- if method == 'self_reported' %}
        coalesce(requests.fairness_group, '{{ var("missing_category") }}') as fairness_group,
        cast(1 as double) as weight,
        {%- else %}
        bisg.fairness_group,
        bisg.probability as weight,
        {%- endif %}
        requests.probability,
        requests.threshold,
        case when requests.decision = 'manual_review' then 1 else 0 end as flagged,
        outcomes.defaulted,
        outcomes.outcome_at,
        requests.received_at,
        requests.scored_count_index as count_index,
        requests.batch_at,
        outcomes.landed_at as outcome_landed_at

    from requests
    {%- if method == 'bisg' %}
    inner join bisg on bisg.request_id = requests.request_id
    {%- endif %}
    left join outcomes on outcomes.request_id = requests.request_id
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}

)

select * from scored
