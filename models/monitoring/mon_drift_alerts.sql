{#-
    One row per drift breach, in the columns mon_alerts unions: drift_ks (numeric inputs, value D)
    and drift_psi (categorical inputs and the group column, value PSI). A breach needs significance
    and effect size together (see mon_drift_numeric / mon_drift_categorical); severity is the
    verdict (warn or critical), threshold the effect-size limit of that severity. Only windows of
    the kinds var('drift_alert_window_kinds') lists raise alerts (hour and day rows are for charts).
-#}
{%- set alert_kinds = "('" ~ var('drift_alert_window_kinds') | join("', '") ~ "')" -%}

with numeric as (

    select * from {{ ref('mon_drift_numeric') }}

),

categorical as (

    select * from {{ ref('mon_drift_categorical') }}

),

breaches as (

    select
        'drift_ks' as check_name,
        feature as subject,
        model_version,
        window_kind,
        window_key,
        window_start,
        window_end,
        ks_d as value,
        case verdict
            when 'critical' then cast({{ var('drift_ks_d_critical') }} as double)
            else cast({{ var('drift_ks_d_warn') }} as double)
        end as threshold,
        verdict as severity,
        {{ monitoring_json_object({
            'ks_d': 'ks_d', 'ks_p_value': 'ks_p_value', 'alpha_per_test': 'alpha_per_test',
            'n': 'n_production', 'm': 'n_reference', 'psi': 'psi',
            'test': "'scipy.stats.ks_2samp(method=asymp)'",
        }) }} as details

    from numeric
    where verdict in ('warn', 'critical') and window_kind in {{ alert_kinds }}

    union all

    select
        'drift_psi' as check_name,
        feature as subject,
        model_version,
        window_kind,
        window_key,
        window_start,
        window_end,
        psi as value,
        case verdict
            when 'critical' then cast({{ var('drift_psi_critical') }} as double)
            else cast({{ var('drift_psi_warn') }} as double)
        end as threshold,
        verdict as severity,
        {{ monitoring_json_object({
            'psi': 'psi', 'kl_divergence': 'kl_divergence', 'chi2_p_value': 'chi2_p_value',
            'alpha_per_test': 'alpha_per_test', 'unseen_share': 'unseen_share',
            'n': 'n_production', 'm': 'n_reference',
            'test': "'chi-square homogeneity (scipy.stats.chi2_contingency, correction=False)'",
        }) }} as details

    from categorical
    where verdict in ('warn', 'critical') and window_kind in {{ alert_kinds }}

),

alerts as (

    select
        {# window_key too: count windows of simultaneous requests can share their start #}
        {{ monitoring_alert_id('check_name', 'subject', 'model_version', 'window_kind',
                               "cast(window_start as varchar) || '#' || cast(window_key as varchar)") }} as alert_id,
        check_name,
        subject,
        model_version,
        window_kind,
        window_start,
        window_end,
        value,
        threshold,
        severity,
        details

    from breaches

)

select * from alerts
