{#-
    Window bucketing shared by every monitoring mart, so hourly, daily, count and deployment
    windows have one definition.

    Kinds:
      hour, day   time windows of event time (charts, reports); start truncated, end = start + 1 unit;
      count       every var('monitor_count_window') rows of a model version, in event order
                  (detection: its sensitivity does not depend on traffic volume); start and end are
                  the first and last event in the window; window_index numbers them from 0;
      deployment  everything a model version did; start and end are its first and last event.
    Windows never span model versions: every mart is per model_version.
-#}

{% macro monitoring_window_kinds() %}
    {{ return(['hour', 'day', 'count', 'deployment']) }}
{% endmacro %}


{#- `relation` (a ref or CTE name with model_version, event_at and request_id) with its window keys
    added: window_kind, window_floor (time kinds), window_index (count; 0 for deployment) and, for
    count and deployment windows, window_first / window_last: the window's first and last event over
    all its rows, so every group of a window reports the same bounds. -#}
{% macro monitoring_windowed(relation, kind, partition_by='model_version', order_by='event_at, request_id') %}
    {%- if kind not in monitoring_window_kinds() -%}
        {{ exceptions.raise_compiler_error("unknown monitoring window kind " ~ kind) }}
    {%- endif %}
    {%- if kind in ('hour', 'day') %}
    select
        '{{ kind }}' as window_kind,
        {{ dbt.date_trunc(kind, 'event_at') }} as window_floor,
        cast(null as bigint) as window_index,
        windowed_source.*

    from {{ relation }} as windowed_source
    {%- else %}
    select
        numbered.*,
        min(event_at) over (partition by {{ partition_by }}, window_index) as window_first,
        max(event_at) over (partition by {{ partition_by }}, window_index) as window_last

    from (
        select
            '{{ kind }}' as window_kind,
            cast(null as timestamp) as window_floor,
            {%- if kind == 'count' %}
            cast(floor((row_number() over (partition by {{ partition_by }} order by {{ order_by }}) - 1)
                / {{ var('monitor_count_window') }}) as bigint) as window_index,
            {%- else %}
            cast(0 as bigint) as window_index,
            {%- endif %}
            windowed_source.*

        from {{ relation }} as windowed_source
    ) as numbered
    {%- endif %}
{% endmacro %}


{#- window_start and window_end of an aggregated window (use with monitoring_windowed). -#}
{% macro monitoring_window_bounds(kind) %}
    {%- if kind in ('hour', 'day') -%}
        window_floor as window_start,
        {{ dbt.dateadd(kind, 1, 'window_floor') }} as window_end
    {%- else -%}
        min(window_first) as window_start,
        max(window_last) as window_end
    {%- endif -%}
{% endmacro %}


{#-
    One aggregate query per window kind, unioned: model_version, window_kind, window_index,
    window_start, window_end, the `group_by` columns, then `aggregates` (SQL select expressions).
-#}
{% macro monitoring_aggregate(relation, aggregates, kinds=none, group_by=[]) %}
    {%- set kinds = kinds or monitoring_window_kinds() -%}
    {%- for kind in kinds %}
    select
        model_version,
        window_kind,
        window_index,
        {{ monitoring_window_bounds(kind) }},
        {%- for column in group_by %}
        {{ column }},
        {%- endfor %}
        {{ aggregates }}

    from ({{ monitoring_windowed(relation, kind) }}) as windowed
    group by model_version, window_kind, window_floor, window_index{% for column in group_by %}, {{ column }}{% endfor %}
    {% if not loop.last %}
    union all
    {% endif %}
    {%- endfor %}
{% endmacro %}
