{#-
    Binomial quantile, equal to scipy.stats.binom.ppf(q, n, p): the smallest count k with
    P(X <= k) >= q for X ~ Binomial(n, p). DuckDB has no such function, so the default
    implementation calls the SciPy UDF that warehouse/dbt_udfs.py registers on every dbt
    connection; another adapter overrides `<adapter>__binom_ppf`.
-#}
{% macro binom_ppf(q, n, p) %}
    {{- return(adapter.dispatch('binom_ppf', 'lendguard')(q, n, p)) -}}
{% endmacro %}

{% macro default__binom_ppf(q, n, p) -%}
    lg_binom_ppf({{ q }}, cast({{ n }} as bigint), {{ p }})
{%- endmacro %}
