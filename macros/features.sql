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
