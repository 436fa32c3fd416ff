{#-
    One row per drift breach, in the columns mon_alert_breaches unions (which gives every alert its
    id, one macro for every check): drift_ks (numeric inputs, value D) and drift_psi (categorical inputs and
    the group column, value PSI). A breach needs significance and effect size together (see
    mon_drift_numeric / mon_drift_categorical); severity is the verdict (warn or critical), threshold
    the effect-size limit of that severity. Only windows of the kinds var('drift_alert_window_kinds')
    lists raise alerts (hour and day rows are for charts).
-#}
{%- set alert_kinds = "('" ~ var('drift_alert_window_kinds') | join("', '") ~ "')" -%}
{%- set checks = [
    {'name': 'drift_ks', 'mart': 'mon_drift_numeric', 'value': 'ks_d', 'limit': 'drift_ks_d', 'details': {
        'ks_d': 'ks_d', 'ks_p_value': 'ks_p_value', 'alpha_per_test': 'alpha_per_test',
        'n': 'n_production', 'm': 'n_reference', 'psi': 'psi',
        'test': "'scipy.stats.ks_2samp(method=asymp)'"}},
    {'name': 'drift_psi', 'mart': 'mon_drift_categorical', 'value': 'psi', 'limit': 'drift_psi', 'details': {
        'psi': 'psi', 'kl_divergence': 'kl_divergence', 'chi2_p_value': 'chi2_p_value',
        'alpha_per_test': 'alpha_per_test', 'unseen_share': 'unseen_share',
        'n': 'n_production', 'm': 'n_reference',
        'test': "'chi-square homogeneity (scipy.stats.chi2_contingency, correction=False)'"}},
] -%}

with
{%- for check in checks %}

{{ check.name }}_breaches as (

    select
        '{{ check.name }}' as check_name,
        feature as subject,
        model_version,
        window_kind,
        window_key,
        window_start,
        window_end,
        {{ check.value }} as value,
        case verdict
            when 'critical' then cast({{ var(check.limit ~ '_critical') }} as double)
            else cast({{ var(check.limit ~ '_warn') }} as double)
        end as threshold,
        verdict as severity,
        {{ monitoring_json_object(check.details) }} as details

    from {{ ref(check.mart) }}
    where verdict in ('warn', 'critical') and window_kind in {{ alert_kinds }}

),
{%- endfor %}

breaches as (

    {%- for check in checks %}
    select * from {{ check.name }}_breaches
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}

)

select * from breaches
