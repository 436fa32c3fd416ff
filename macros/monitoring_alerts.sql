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
        || {{ window_kind }} || '|' || cast({{ window_key }} as {{ dbt.type_string() }})
    )
{%- endmacro %}


{#- The subject of a group check's alert: as it always was for self-reported groups (so their alert
    ids do not change), prefixed with the method otherwise ('bisg:Hispanic', 'bisg:__all_groups__'). -#}
{% macro monitoring_method_subject(method, subject) -%}
    case when {{ method }} = 'self_reported' then {{ subject }} else {{ method }} || ':' || {{ subject }} end
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
    ) as {{ dbt.type_string() }})
{%- endmacro %}


{#- A JSON object text {key: value} aggregated over a group's rows (DuckDB's json_group_object). -#}
{% macro monitoring_json_group_object(key, value) -%}
    {{ return(adapter.dispatch('monitoring_json_group_object', 'lendguard')(key, value)) }}
{%- endmacro %}

{% macro default__monitoring_json_group_object(key, value) -%}
    cast(json_group_object({{ key }}, {{ value }}) as {{ dbt.type_string() }})
{%- endmacro %}

{#- Spark: a struct written as JSON (null members kept: spark.sql.jsonGenerator.ignoreNullFields is
    false in the profile, as DuckDB's json_object keeps them). -#}
{% macro spark__monitoring_json_object(pairs) -%}
    to_json(named_struct(
        {%- for key, value in pairs.items() %}
        '{{ key }}', {{ value }}{{ "," if not loop.last }}
        {%- endfor %}
    ))
{%- endmacro %}

{#- Spark: a map of the group's (key, value) pairs written as JSON, keys in sorted order (DuckDB's
    follows the rows; a reader compares the parsed objects). -#}
{% macro spark__monitoring_json_group_object(key, value) -%}
    to_json(map_from_entries(array_sort(collect_list(struct({{ key }}, {{ value }})))))
{%- endmacro %}
