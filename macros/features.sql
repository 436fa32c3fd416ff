{#-
    The model's features, defined once. Renders the select list of feature columns over any relation
    whose columns carry the loan-book names: the staged loan book (training) and the applications the
    API scores (its compiled form ships with every model version), so the two cannot disagree.
    Numeric inputs are cast to double; a missing category becomes var('missing_category'); derived
    features are SQL expressions declared in the loan-book contract.
-#}
{% macro loan_feature_columns(loan_book=none) -%}
    {%- set lb = loan_book or var('loan_book') -%}
    {%- set columns = [] -%}
    {%- for name in lb.numeric_features -%}
        {%- do columns.append('cast(' ~ name ~ ' as double) as ' ~ name) -%}
    {%- endfor -%}
    {%- for name in lb.categorical_features -%}
        {%- do columns.append(
            "coalesce(nullif(trim(cast(" ~ name ~ " as " ~ dbt.type_string() ~ ")), ''), '" ~ var('missing_category') ~ "') as " ~ name
        ) -%}
    {%- endfor -%}
    {%- for derived in lb.derived_features -%}
        {%- do columns.append('cast(' ~ derived.sql ~ ' as double) as ' ~ derived.name) -%}
    {%- endfor -%}
    {{ columns | join(',\n    ') }}
{%- endmacro %}

{#-
    The loan-book inputs as staged: numeric ones as double, categorical ones as text, under their
    contract names (followed by a comma, for use inside a select list). Shared by every staging
    model that carries applications.
-#}
{% macro loan_input_columns(loan_book=none) -%}
    {%- set lb = loan_book or var('loan_book') -%}
    {%- for name in lb.numeric_features %}
        cast({{ name }} as double) as {{ name }},
    {%- endfor %}
    {%- for name in lb.categorical_features %}
        cast({{ name }} as {{ dbt.type_string() }}) as {{ name }},
    {%- endfor %}
{%- endmacro %}

{#-
    The self-reported group as staged (`fairness_group`): the contract's group column as text, or a
    missing value for a book that declares none (proxies only: its fairness is estimated with BISG).
    Followed by a comma, like loan_input_columns.
-#}
{% macro fairness_group_column(loan_book=none) -%}
    {%- set lb = loan_book or var('loan_book') -%}
    {%- if lb.group_column is not none %}
        cast({{ lb.group_column }} as {{ dbt.type_string() }}) as fairness_group,
    {%- else %}
        cast(null as {{ dbt.type_string() }}) as fairness_group,
    {%- endif %}
{%- endmacro %}

{#-
    The BISG proxy columns (surname, area, ...) under their staged names (`proxy_surname`,
    `proxy_zcta`, ...), as text; nothing for a book without proxies. Followed by a comma.
-#}
{% macro proxy_columns(loan_book=none) -%}
    {%- set lb = loan_book or var('loan_book') -%}
    {%- for staged, column in (lb.proxies or {}).items() %}
        cast({{ column }} as {{ dbt.type_string() }}) as {{ staged }},
    {%- endfor %}
{%- endmacro %}
