{#-
    BISG for every loan of the current book: P(group | surname, ZCTA), one row per loan and Census
    group, from the contract's proxy columns (staged as proxy_surname, proxy_zcta; a ZIP code is
    taken as the ZCTA) and the newest Census tables (`lendguard reference-data load`). Fairness
    testing reads these as weights (ml.metrics); they never decide anything. Empty for a book
    without proxies, or before the Census tables are loaded.
-#}
{%- set lb = var('loan_book') -%}

{% if 'proxy_surname' in (lb.proxies or {}) -%}
with bisg as (

    {{ bisg_probabilities(ref('stg_landing__loans'), 'loan_id', 'proxy_surname', 'proxy_zcta') | indent(4) }}

)

select
    cast(applicant_id as {{ dbt.type_string() }}) as loan_id,
    census_group,
    group_name,
    probability,
    bisg_method,
    surname_match
from bisg
{%- else -%}
select
    cast(null as {{ dbt.type_string() }}) as loan_id,
    cast(null as {{ dbt.type_string() }}) as census_group,
    cast(null as {{ dbt.type_string() }}) as group_name,
    cast(null as double) as probability,
    cast(null as {{ dbt.type_string() }}) as bisg_method,
    cast(null as {{ dbt.type_string() }}) as surname_match
where false
{%- endif %}
