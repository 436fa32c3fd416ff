{#-
    Helpers for alert rows (mon_alerts and the marts that feed it, drift included).
-#}

{#- The alert's identity, for every check: md5 of check_name|subject|model_version|window_kind|window_key.
    The window key (monitoring_window_key) does not move as a window fills: a count window's index,
    an hour or day window's floor, 0 for the deployment; never a start time (a late row moves an
    open window's first event, and simultaneous requests can start two count windows at one second).
    So one breach keeps one id from build to build, and `lendguard monitor` notifies it once. -#}
{% macro monitoring_alert_id(check_name, subject, model_version, window_kind, window_key) -%}
    md5(
        {{ check_name }} || '|' || {{ subject }} || '|' || coalesce({{ model_version }}, '') || '|'
        || {{ window_kind }} || '|' || cast({{ window_key }} as varchar)
    )
{%- endmacro %}


{#- One bigint key per window within (model_version, window_kind), as the drift marts' window_key:
    epoch seconds of an hour or day window's start, else the window index (count; 0 for deployment). -#}
{% macro monitoring_window_key(window_kind, window_index, window_start) -%}
    case when {{ window_kind }} in ('hour', 'day') then {{ drift_epoch_seconds(window_start) }}
        else cast({{ window_index }} as bigint) end
{%- endmacro %}


{#- The severity var('monitor_severity') gives a check (warn or critical). -#}
{% macro monitoring_severity(check_name) -%}
    {%- set severity = var('monitor_severity').get(check_name) -%}
    {%- if severity not in ('warn', 'critical') -%}
        {{ exceptions.raise_compiler_error("var monitor_severity." ~ check_name ~ " must be warn or critical, got " ~ severity) }}
    {%- endif -%}
    '{{ severity }}'
{%- endmacro %}


{#- A JSON object text from alternating key names and SQL values (DuckDB's json_object). -#}
{% macro monitoring_json_object(pairs) -%}
    {{ return(adapter.dispatch('monitoring_json_object', 'lendguard')(pairs)) }}
{%- endmacro %}

{% macro default__monitoring_json_object(pairs) -%}
    cast(json_object(
        {%- for key, value in pairs.items() %}
        '{{ key }}', {{ value }}{{ "," if not loop.last }}
        {%- endfor %}
    ) as varchar)
{%- endmacro %}


{#- A JSON object text {key: value} aggregated over a group's rows (DuckDB's json_group_object). -#}
{% macro monitoring_json_group_object(key, value) -%}
    {{ return(adapter.dispatch('monitoring_json_group_object', 'lendguard')(key, value)) }}
{%- endmacro %}

{% macro default__monitoring_json_group_object(key, value) -%}
    cast(json_group_object({{ key }}, {{ value }}) as varchar)
{%- endmacro %}
