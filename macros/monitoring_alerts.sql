{#-
    Helpers for alert rows (mon_alerts and the marts that feed it, drift included).
-#}

{#- The alert's identity: md5 of check_name|subject|model_version|window_kind|window_start, and for a
    count window its index too (`window_index`): count windows of simultaneous requests (a batch, or
    applications' own timestamps given to the second) can share a start. The same breach keeps its
    id from build to build, so `lendguard monitor` notifies it once. -#}
{% macro monitoring_alert_id(check_name, subject, model_version, window_kind, window_start, window_index=none) -%}
    md5(
        {{ check_name }} || '|' || {{ subject }} || '|' || coalesce({{ model_version }}, '') || '|'
        || {{ window_kind }} || '|' || coalesce(cast({{ window_start }} as varchar), '')
        {%- if window_index is not none %}
        || case when {{ window_kind }} = 'count' then '#' || cast({{ window_index }} as varchar) else '' end
        {%- endif %}
    )
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
