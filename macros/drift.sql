{#-
    Input drift (issue #6): helpers shared by the mon_drift_* models and mon_feature_histograms.
    The statistics themselves are plain SQL in those models; only SciPy's distribution functions
    (p-values) come from UDFs (warehouse/dbt_udfs.py), behind adapter-dispatched macros.
-#}

{#- A categorical value as the features macro sees it: trimmed text, empty or NULL -> var('missing_category'). -#}
{% macro drift_category(expression) -%}
    coalesce(nullif(trim(cast({{ expression }} as varchar)), ''), '{{ var("missing_category") }}')
{%- endmacro %}


{#- Tests in one window's family (Bonferroni): every numeric and categorical input and the group. -#}
{% macro drift_tests_per_window() -%}
    {%- set lb = var('loan_book') -%}
    {{ return(lb.numeric_features | length + lb.categorical_features | length + 1) }}
{%- endmacro %}


{#- window_kind from the grouping bits of `group by drift_grouping_sets(keys, kinds)`. -#}
{% macro drift_window_kind(kinds=['hour', 'day', 'count', 'deployment']) -%}
    {%- set columns = [] -%}
    {%- for kind, column in [('hour', 'hour_floor'), ('day', 'day_floor'), ('count', 'count_index')] -%}
        {%- if kind in kinds %}{% do columns.append((kind, column)) %}{% endif -%}
    {%- endfor -%}
    {%- if columns | length == 0 -%}
    'deployment'
    {%- else -%}
    case grouping({{ columns | map(attribute=1) | join(', ') }})
        {%- for kind, column in columns %}
        {%- set ns = namespace(mask=0) %}
        {%- for other in columns %}{% if other[1] != column %}{% set ns.mask = ns.mask + 2 ** (columns | length - loop.index) %}{% endif %}{% endfor %}
        when {{ ns.mask }} then '{{ kind }}'
        {%- endfor %}
        else 'deployment'
    end
    {%- endif -%}
{%- endmacro %}


{#- The grouping sets of the window kinds `kinds` (default all four) for `keys` (a list of column names). -#}
{% macro drift_grouping_sets(keys, kinds=['hour', 'day', 'count', 'deployment']) -%}
    {%- set extra = {'hour': ', hour_floor', 'day': ', day_floor', 'count': ', count_index', 'deployment': ''} -%}
    grouping sets (
        {%- for kind in kinds %}
        ({{ keys | join(', ') }}{{ extra[kind] }}){{ "," if not loop.last }}
        {%- endfor %}
    )
{%- endmacro %}


{#- Two-sided p-value of scipy.stats.ks_2samp(method='asymp') for statistic d at sample sizes n1, n2. -#}
{% macro drift_ks_p_value(d, n1, n2) -%}
    {{ return(adapter.dispatch('drift_ks_p_value', 'lendguard')(d, n1, n2)) }}
{%- endmacro %}

{% macro default__drift_ks_p_value(d, n1, n2) -%}
    lg_ks_2samp_pvalue({{ d }}, cast({{ n1 }} as bigint), cast({{ n2 }} as bigint))
{%- endmacro %}


{#- scipy.stats.chi2.sf(x, df): the p-value of a chi-square statistic. -#}
{% macro drift_chi2_p_value(x, df) -%}
    {{ return(adapter.dispatch('drift_chi2_p_value', 'lendguard')(x, df)) }}
{%- endmacro %}

{% macro default__drift_chi2_p_value(x, df) -%}
    lg_chi2_sf(cast({{ x }} as double), cast({{ df }} as double))
{%- endmacro %}


{#- Verdict of one drift test: insufficient (window too small), ok, warn or critical. Significance
    and effect size together: p below alpha / tests in the window AND the effect at least the limit. -#}
{% macro drift_verdict(n, p_value, effect, warn_limit, critical_limit) -%}
    case
        when {{ n }} < {{ var('drift_min_window_rows') }} then 'insufficient'
        when {{ effect }} < {{ warn_limit }} then 'ok'
        when {{ p_value }} is null then 'insufficient'
        when {{ p_value }} < {{ var('drift_alpha') }} / {{ drift_tests_per_window() }}
            and {{ effect }} >= {{ critical_limit }} then 'critical'
        when {{ p_value }} < {{ var('drift_alpha') }} / {{ drift_tests_per_window() }}
            and {{ effect }} >= {{ warn_limit }} then 'warn'
        else 'ok'
    end
{%- endmacro %}


{#- One bigint key per window within (model_version, window_kind), for joins between the drift models:
    epoch seconds of the hour/day floor, the count index, 0 for the deployment. -#}
{% macro drift_window_key(kinds=['hour', 'day', 'count', 'deployment']) -%}
    coalesce(
        {%- if 'hour' in kinds %}{{ drift_epoch_seconds('hour_floor') }}, {% endif -%}
        {%- if 'day' in kinds %}{{ drift_epoch_seconds('day_floor') }}, {% endif -%}
        {%- if 'count' in kinds %}count_index, {% endif -%}
        0)
{%- endmacro %}

{% macro drift_epoch_seconds(timestamp) -%}
    {{ return(adapter.dispatch('drift_epoch_seconds', 'lendguard')(timestamp)) }}
{%- endmacro %}

{% macro default__drift_epoch_seconds(timestamp) -%}
    cast(extract(epoch from {{ timestamp }}) as bigint)
{%- endmacro %}

{% macro duckdb__drift_epoch_seconds(timestamp) -%}
    cast(epoch({{ timestamp }}) as bigint)
{%- endmacro %}
