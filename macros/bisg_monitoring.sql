{#- BISG in monitoring: the prediction log's evidence columns (macro bisg_from_surname_evidence turns them into probabilities). -#}

{#-
    The prediction log's BISG evidence, for a book with proxies (none otherwise): the area
    (`proxy_zcta`, `proxy_census_tract`, as the log holds them) and the surname's Census row the API
    looked up (`surname_p_<census group>`, `surname_match`). Never the names: the raw log holds them
    only when LENDGUARD_LOG_PROXY_NAMES is true, and no model reads them. Followed by a comma.
-#}
{% macro logged_bisg_evidence_columns(loan_book=none) -%}
    {%- set lb = loan_book or var('loan_book') -%}
    {%- set proxies = lb.proxies or {} -%}
    {%- for staged in ['proxy_zcta', 'proxy_census_tract'] if staged in proxies %}
        cast({{ proxies[staged] }} as {{ dbt.type_string() }}) as {{ staged }},
    {%- endfor %}
    {%- if 'proxy_surname' in proxies %}
    {%- for census_group in var('bisg_groups') %}
        cast(surname_p_{{ census_group }} as double) as surname_p_{{ census_group }},
    {%- endfor %}
        cast(surname_match as {{ dbt.type_string() }}) as surname_match,
    {%- endif %}
{%- endmacro %}

{#- The names of those columns (for models that carry them along). -#}
{% macro logged_bisg_evidence_names(loan_book=none) -%}
    {%- set lb = loan_book or var('loan_book') -%}
    {%- set proxies = lb.proxies or {} -%}
    {%- set names = [] -%}
    {%- for staged in ['proxy_zcta', 'proxy_census_tract'] if staged in proxies %}{% do names.append(staged) %}{% endfor -%}
    {%- if 'proxy_surname' in proxies -%}
        {%- for census_group in var('bisg_groups') %}{% do names.append('surname_p_' ~ census_group) %}{% endfor -%}
        {%- do names.append('surname_match') -%}
    {%- endif -%}
    {{ return(names) }}
{%- endmacro %}
