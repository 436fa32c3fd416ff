{{ config(
    materialized='incremental',
    unique_key='request_id',
    incremental_strategy=incremental_appending_strategy(),
    on_schema_change='append_new_columns',
) }}
{#-
    BISG per logged request: P(group | surname, area), one row per request and loan-book group, for a
    book whose contract declares proxies (empty otherwise). The API logs no name by default: it logs
    the area and the surname's row of the Census surname table (int_requests' surname_p_* and
    surname_match, see warehouse/prediction_log.py), and macro bisg_from_surname_evidence combines them
    with P(area | group) exactly as bisg_probabilities does with a name (the 'ALL OTHER NAMES' row for a
    surname not in the table or not sent; the surname alone for an area not in the table or not sent).
    Census groups the bisg_groups var maps to one loan-book group add up. int_scored_requests weights
    each request's decision by these probabilities (method 'bisg'). Incremental: the requests
    int_requests (re)wrote since the last run (batch_at); a request's probabilities never change
    afterwards, even if the Census tables are loaded again (its windows were reported with them).
-#}
{%- set lb = var('loan_book') -%}
{%- set since = drift_built_through() if 'proxy_surname' in (lb.proxies or {}) else none -%}

{% if 'proxy_surname' in (lb.proxies or {}) -%}
with requests as (

    select * from {{ ref('int_requests') }}
    where surname_match is not null
    {%- if since %}
        and batch_at > cast('{{ since }}' as timestamp)
    {%- endif %}

),

bisg as (

    {{ bisg_from_surname_evidence('requests', 'request_id', 'proxy_zcta' if 'proxy_zcta' in lb.proxies else 'null') | indent(4) }}

),

per_group as (

    select
        applicant_id as request_id,
        group_name as fairness_group,
        sum(probability) as probability,
        min(bisg_method) as bisg_method,
        min(surname_match) as surname_match

    from bisg
    group by applicant_id, group_name

)

select
    per_group.request_id,
    requests.model_version,
    'bisg' as method,
    per_group.fairness_group,
    per_group.probability,
    per_group.bisg_method,
    per_group.surname_match,
    requests.batch_at

from per_group
inner join requests on requests.request_id = per_group.request_id
{%- else -%}
select
    cast(null as {{ dbt.type_string() }}) as request_id,
    cast(null as {{ dbt.type_string() }}) as model_version,
    cast(null as {{ dbt.type_string() }}) as method,
    cast(null as {{ dbt.type_string() }}) as fairness_group,
    cast(null as double) as probability,
    cast(null as {{ dbt.type_string() }}) as bisg_method,
    cast(null as {{ dbt.type_string() }}) as surname_match,
    cast(null as timestamp) as batch_at
where false
{%- endif %}
