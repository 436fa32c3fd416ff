{#-
    One row per breach of a monitoring check, as this build measures it: the output, fairness and
    ops checks here, and the drift checks (mon_drift_alerts). Breaches count in the window kinds
    var('monitor_alert_window_kinds') lists (output and fairness checks; hour and day rows are for
    charts) and in hourly windows (ops checks). Thresholds and severities are vars. Every breach gets
    its id here, one macro for every check (monitoring_alert_id). mon_alert_history keeps their
    state across builds (upstream of the `monitor` tests, so a failing check never keeps it from
    being recorded), and mon_alerts lists the open ones.
    Group checks run per method (self_reported, bisg): a self-reported breach keeps the subject it
    always had (the group, or '__all_groups__'), so its alert id is unchanged; a BISG breach's subject
    is prefixed 'bisg:' (macro monitoring_method_subject), so the two never share an id.
-#}
{%- set alert_kinds = "('" ~ var('monitor_alert_window_kinds') | join("', '") ~ "')" -%}

with positive_rates as (

    select * from {{ ref('mon_positive_rates') }}

),

fairness_estimated as (

    select * from {{ ref('mon_fairness_estimated') }}

),

realised_quality as (

    select * from {{ ref('mon_realised_quality') }}

),

ops_hourly as (

    select * from {{ ref('mon_ops_hourly') }}

),

drift_alerts as (

    select * from {{ ref('mon_drift_alerts') }}

),

output_rate_breaches as (

    select
        'output_positive_rate' as check_name,
        {{ monitoring_method_subject('method', 'fairness_group') }} as subject,
        model_version,
        window_kind,
        {{ monitoring_window_key('window_kind', 'window_index', 'window_start') }} as window_key,
        window_start,
        window_end,
        rate as value,
        case when positives > positives_high then ci_high else ci_low end as threshold,
        {{ monitoring_severity('output_positive_rate') }} as severity,
        {{ monitoring_json_object({
            'method': 'method', 'n': 'n', 'n_eff': 'n_eff', 'positives': 'positives',
            'effective_positives': 'effective_positives', 'expected_rate': 'expected_rate',
            'positives_low': 'positives_low', 'positives_high': 'positives_high',
            'alpha_per_test': 'alpha_per_test', 'tests_in_family': 'tests_in_family',
            'interval': "'exact binomial (scipy.stats.binom.interval) at the effective size, Bonferroni'",
        }) }} as details

    from positive_rates
    where breach and window_kind in {{ alert_kinds }}

),

{#- The FPR-gap checks, label-free (estimated) and once outcomes land (realised): one row per window
    whose gap over the groups in it exceeds its limit. #}
{%- for basis, source in [('estimated', 'fairness_estimated'), ('realised', 'realised_quality')] %}
{%- set check_name = basis ~ '_fpr_gap' %}
{{ basis }}_gap_breaches as (

    select
        '{{ check_name }}' as check_name,
        {{ monitoring_method_subject('method', "'__all_groups__'") }} as subject,
        model_version,
        window_kind,
        {{ monitoring_window_key('window_kind', 'window_index', 'window_start') }} as window_key,
        window_start,
        max(window_end) as window_end,
        max({{ check_name }}) as value,
        {{ var('max_' ~ check_name) }} as threshold,
        {{ monitoring_severity(check_name) }} as severity,
        {{ monitoring_json_group_object('fairness_group', basis ~ '_fpr') }} as details

    from {{ source }}
    where in_gap
        and groups_in_gap >= 2
        and {{ check_name }} > {{ var('max_' ~ check_name) }}
        and window_kind in {{ alert_kinds }}
    group by model_version, method, window_kind, window_start, window_index

),
{% endfor %}

ops_measures as (

    select
        model_version,
        hour_start,
        hour_end,
        requests,
        errors_server,
        errors_validation,
        errors_auth,
        server_error_rate,
        client_error_rate,
        latency_p99_ms

    from ops_hourly
    where requests >= {{ var('ops_min_requests') }}

),

ops_breaches as (

    {%- set ops_checks = [
        ('server_error_rate', 'server_error_rate', var('max_server_error_rate')),
        ('client_error_rate', 'client_error_rate', var('max_client_error_rate')),
        ('latency_p99', 'latency_p99_ms', var('max_latency_p99_ms')),
    ] %}
    {%- for check_name, column, limit in ops_checks %}
    select
        '{{ check_name }}' as check_name,
        '__service__' as subject,
        model_version,
        'hour' as window_kind,
        {{ drift_epoch_seconds('hour_start') }} as window_key,
        hour_start as window_start,
        hour_end as window_end,
        cast({{ column }} as double) as value,
        cast({{ limit }} as double) as threshold,
        {{ monitoring_severity(check_name) }} as severity,
        {{ monitoring_json_object({
            'requests': 'requests', 'errors_server': 'errors_server',
            'errors_validation': 'errors_validation', 'errors_auth': 'errors_auth',
            'latency_p99_ms': 'latency_p99_ms',
        }) }} as details

    from ops_measures
    where {{ column }} > {{ limit }}
    {% if not loop.last %}
    union all
    {% endif %}
    {%- endfor %}

),

own_breaches as (

    select * from output_rate_breaches
    union all
    select * from estimated_gap_breaches
    union all
    select * from realised_gap_breaches
    union all
    select * from ops_breaches

),

breaches as (

    {%- set columns = [
        ('check_name', dbt.type_string()), ('subject', dbt.type_string()), ('model_version', dbt.type_string()),
        ('window_kind', dbt.type_string()), ('window_key', 'bigint'), ('window_start', 'timestamp'),
        ('window_end', 'timestamp'), ('value', 'double'), ('threshold', 'double'),
        ('severity', dbt.type_string()), ('details', dbt.type_string()),
    ] %}
    {%- for relation in ['own_breaches', 'drift_alerts'] %}
    select
        {%- for name, type in columns %}
        cast({{ name }} as {{ type }}) as {{ name }}{{ "," if not loop.last }}
        {%- endfor %}

    from {{ relation }}
    {% if not loop.last %}
    union all
    {% endif %}
    {%- endfor %}

),

alerts as (

    select
        {{ monitoring_alert_id('check_name', 'subject', 'model_version', 'window_kind', 'window_key') }} as alert_id,
        *

    from breaches

)

select * from alerts
