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
            "coalesce(nullif(trim(cast(" ~ name ~ " as varchar)), ''), '" ~ var('missing_category') ~ "') as " ~ name
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
        cast({{ name }} as varchar) as {{ name }},
    {%- endfor %}
{%- endmacro %}
