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


{#-
    Beta quantile, equal to scipy.stats.beta.ppf(q, a, b): the ends of a Clopper–Pearson interval
    (x successes of n: beta.ppf(alpha/2, x, n - x + 1) and beta.ppf(1 - alpha/2, x + 1, n - x)).
-#}
{% macro beta_ppf(q, a, b) %}
    {{- return(adapter.dispatch('beta_ppf', 'lendguard')(q, a, b)) -}}
{% endmacro %}

{% macro default__beta_ppf(q, a, b) -%}
    lg_beta_ppf({{ q }}, cast({{ a }} as double), cast({{ b }} as double))
{%- endmacro %}
