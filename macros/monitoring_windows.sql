{#-
    Window bucketing shared by the monitoring marts, so hourly, daily and deployment windows have
    one definition (count windows are numbered once, by int_requests: macro monitoring_count_numbered).

    Kinds:
      hour, day   time windows of event time (charts, reports); start truncated, end = start + 1 unit;
                  a row that arrives after its window was reported lands in it (the window changes);
      count       every var('monitor_count_window') rows of a model version, in ingestion order
                  (detection: its sensitivity does not depend on traffic volume, and a closed one
                  never changes); int_requests numbers them, the marts group by its indexes;
      deployment  everything a model version did; start and end are its first and last event.
    Windows never span model versions: every mart is per model_version.
-#}

{% macro monitoring_window_kinds() %}
    {{ return(['hour', 'day', 'count', 'deployment']) }}
{% endmacro %}


{#- `relation` (a ref or CTE name with model_version and event_at) with its window keys added:
    window_kind, window_floor (time kinds), window_index (0 for deployment) and, for the deployment,
    window_first / window_last: its first and last event over all its rows, so every group of it
    reports the same bounds. -#}
{% macro monitoring_windowed(relation, kind, partition_by='model_version') %}
    {%- if kind not in monitoring_window_kinds() or kind == 'count' -%}
        {{ exceptions.raise_compiler_error("monitoring_windowed: no window kind " ~ kind
            ~ " (count windows are int_requests' indexes)") }}
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
            cast(0 as bigint) as window_index,
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


{#- `where` clause of an incremental monitoring model reading a relation with received_at: the rows
    received since the newest it holds, less var('monitor_incremental_lookback_minutes') (files
    another API replica landed late). A literal cutoff, so the scan can skip files, row groups and
    table segments by their min/max statistics. Empty when the model is built whole. -#}
{% macro monitoring_received_since_last_run(incremental=none) %}
    {%- set incremental = is_incremental() if incremental is none else incremental -%}
    {%- if execute and incremental %}
    {%- set newest = run_query("select cast(max(received_at) as " ~ dbt.type_string() ~ ") from " ~ this).columns[0].values()[0] %}
    {%- if newest %}
    where received_at > cast('{{ newest }}' as timestamp) - interval '{{ var("monitor_incremental_lookback_minutes") }} minutes'
    {%- endif %}
    {%- endif %}
{% endmacro %}


{#-
    Count-window numbering for int_requests (the drift and the output count windows, numbered in
    one sort), in INGESTION order, so a closed count window never changes: per model version, the
    rows a build sees for the first time come after every row of earlier builds, ordered within the
    build by receipt time (received_at, the server's clock) then request_id. A row's own timestamp
    (occurred_at, back-dated or late) decides its hour and day windows, never its count window;
    a file another API replica lands late joins the open count window instead of reshuffling
    closed ones. A full rebuild orders every row by (received_at, request_id): the same numbers
    whenever each build's new rows were received after the rows of earlier builds (one replica, or
    replicas whose files land before the next build); only a replica file landed after a build that
    had already read later rows numbers differently from a rebuild (README, Monitoring: windows).
    Emits CTEs ending in `numbered`: the rows of `new_rows` (a CTE with model_version, request_id,
    received_at, event_at and `columns`) with one index column per entry of `counters` (name -> a
    condition on those columns): the 0-based window of var('monitor_count_window') rows among the
    version's rows meeting the condition; null for the rows that do not meet it.
    Incremental (`incremental` true, the model holding the counters): rows already numbered are left
    out (they keep their numbers; a re-read row of the lookback is not new), and each count continues
    from how many rows the version already numbered.
    The running counts are count(case ...), not count(*) filter (...): DuckDB 1.5 evaluates a
    filtered running window aggregate frame by frame (151 s for 1M rows, against 0.24 s).
-#}
{% macro monitoring_count_numbered(new_rows, columns, incremental, counters) %}
    {%- set keys = ['model_version', 'request_id', 'event_at'] + columns %}
    {%- if incremental %}
unseen as (

    select {% for column in keys %}new_row.{{ column }}{{ ", " if not loop.last }}{% endfor %}
    from {{ new_rows }} as new_row
    where not exists (select 1 from {{ this }} as existing where existing.request_id = new_row.request_id)

),

offsets as (

    {#- How many rows of each version every count already numbered: the new ones continue from there. #}
    select
        existing.model_version,
        {%- for name in counters %}
        count(existing.{{ name }}) as {{ name }}_before{{ "," if not loop.last }}
        {%- endfor %}
    from {{ this }} as existing
    where existing.model_version in (select model_version from unseen)
    group by existing.model_version

),
    {%- endif %}

counted as (

    select
        {% for column in keys %}{{ column }},
        {% endfor -%}
        {%- for name, condition in counters.items() %}
        coalesce({{ condition }}, false) as is_{{ name }}{{ "," if not loop.last }}
        {%- endfor %}
    from {{ 'unseen' if incremental else new_rows }}

),

numbered as (

    select
        {% for column in keys %}counted.{{ column }},
        {% endfor -%}
        {%- for name in counters %}
        case when counted.is_{{ name }} then cast(floor((
            {%- if incremental %}coalesce(offsets.{{ name }}_before, 0) + {% endif -%}
            count(case when counted.is_{{ name }} then 1 end) over ingestion_order - 1)
            / {{ var('monitor_count_window') }}) as bigint) end as {{ name }}{{ "," if not loop.last }}
        {%- endfor %}

    from counted
    {%- if incremental %}
    left join offsets on offsets.model_version = counted.model_version
    {%- endif %}
    window ingestion_order as (
        partition by counted.model_version order by counted.received_at, counted.request_id
        rows between unbounded preceding and current row
    )

)
{% endmacro %}



{#- The test level of one window (alpha-spending, fixed by the window's index alone, so a window's
    verdicts never change as later windows arrive). Count window k of a version spends
        alpha * ((k + 1)^-s - (k + 2)^-s),      s = var('monitor_alpha_spending_exponent'),
    a telescoping sum: the first K windows spend alpha * (1 - (K + 1)^-s) < alpha together, so the
    family-wise false-alarm rate over every count window of a version stays below alpha, however
    long it runs (the price: window k's level falls like alpha * s / k^(1+s)). Hour, day and
    deployment windows each get alpha (the deployment is one window that grows; hour and day rows
    are for charts). -#}
{% macro monitoring_window_alpha(alpha, window_kind, window_index) -%}
    case when {{ window_kind }} = 'count' then
        cast({{ alpha }} as double) * (
            power(cast({{ window_index }} as double) + 1, -{{ var('monitor_alpha_spending_exponent') }})
            - power(cast({{ window_index }} as double) + 2, -{{ var('monitor_alpha_spending_exponent') }}))
    else cast({{ alpha }} as double) end
{%- endmacro %}
