{#-
    Input drift (issue #6): helpers shared by the mon_drift_* and int_drift_* models and mon_feature_histograms.
    The statistics themselves are plain SQL in those models; only SciPy's distribution functions
    (p-values) come from UDFs (warehouse/dbt_udfs.py), behind adapter-dispatched macros.
-#}

{#- A categorical value as the features macro sees it: trimmed text, empty or NULL -> var('missing_category'). -#}
{% macro drift_category(expression) -%}
    coalesce(nullif(trim(cast({{ expression }} as {{ dbt.type_string() }})), ''), '{{ var("missing_category") }}')
{%- endmacro %}


{#- Tests in one window's family (Bonferroni): every numeric and categorical input and the group. -#}
{% macro drift_tests_per_window() -%}
    {%- set lb = var('loan_book') -%}
    {{ return(lb.numeric_features | length + lb.categorical_features | length + 1) }}
{%- endmacro %}


{#- The significance level of each test of a window's family: var('drift_alpha') over the family (Bonferroni). -#}
{% macro drift_alpha_per_test() -%}
    cast({{ var('drift_alpha') }} as double) / {{ drift_tests_per_window() }}
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
    case {{ grouping_bits(columns | map(attribute=1) | list) }}
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
    and effect size together: p below alpha / tests in the window AND the effect at least the limit.
    The level is a double on every engine (the models' alpha_per_test): Spark would divide the
    decimal literal in DECIMAL arithmetic, rounded to its scale. -#}
{% macro drift_verdict(n, p_value, effect, warn_limit, critical_limit) -%}
    case
        when {{ n }} < {{ var('drift_min_window_rows') }} then 'insufficient'
        when {{ effect }} < {{ warn_limit }} then 'ok'
        when {{ p_value }} is null then 'insufficient'
        when {{ p_value }} < {{ drift_alpha_per_test() }}
            and {{ effect }} >= {{ critical_limit }} then 'critical'
        when {{ p_value }} < {{ drift_alpha_per_test() }}
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

{% macro spark__drift_epoch_seconds(timestamp) -%}
    cast(unix_timestamp({{ timestamp }}) as bigint)
{%- endmacro %}


{#-
    Incremental drift marts (issue #6, item 7). int_requests stamps every row it (re)numbers with
    the run's batch_at (int_drift_requests, a view over it, carries it); each incremental drift
    mart keeps the newest batch_at it was built from and, on the next run, recomputes only the
    windows holding a request of a newer batch (their hour, day and count windows, and the
    version's deployment window), replacing those windows whole
    (delete+insert on model_version, window_kind, window_key). Windows never shrink or disappear
    (the log is append-only), so the result equals a full rebuild.
-#}

{#- The run's batch stamp (a timestamp literal): one value for every row a run (re)numbers. -#}
{% macro drift_batch_stamp() -%}
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as timestamp)
{%- endmacro %}


{#- The newest batch_at `relation` (default: the model being built) holds, as a literal; none when
    the model is not incremental this run or the relation is empty. -#}
{% macro drift_built_through(relation=none) -%}
    {%- if not drift_incremental_ready() -%}{{ return(none) }}{%- endif -%}
    {%- set newest = run_query("select cast(max(batch_at) as " ~ dbt.type_string() ~ ") from " ~ (relation or this)).columns[0].values()[0] -%}
    {{ return(newest) }}
{%- endmacro %}


{#- True when this run is incremental and the existing table already has `columns` (a table built
    before the drift marts were incremental lacks batch_at: that run rebuilds it whole, replacing
    every window, and the columns are appended by on_schema_change). -#}
{% macro drift_incremental_ready(columns=['batch_at']) -%}
    {%- if not execute or not is_incremental() -%}{{ return(false) }}{%- endif -%}
    {%- set existing = adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list -%}
    {%- for column in columns -%}
        {%- if column not in existing -%}{{ return(false) }}{%- endif -%}
    {%- endfor -%}
    {{ return(true) }}
{%- endmacro %}


{#- The condition on a row of int_drift_requests or int_scored_requests that it changed after
    `since` (a timestamp literal): (re)written by a later run (batch_at); with `outcomes`, also an
    outcome landed since (less the lookback, for a file landed while that run was reading). -#}
{% macro drift_changed_since(since, outcomes=false) -%}
    (batch_at > cast('{{ since }}' as timestamp)
    {%- if outcomes %}
        or outcome_landed_at > cast('{{ since }}' as timestamp)
            - interval '{{ var("monitor_incremental_lookback_minutes") }} minutes'
    {%- endif %})
{%- endmacro %}


{#- The windows (model_version, window_kind, window_key) holding a request of int_drift_requests
    (`requests`) changed after `since` (drift_changed_since). -#}
{% macro drift_touched_windows(requests, since, kinds=['hour', 'day', 'count', 'deployment'], outcomes=false) -%}
    {%- set keys = {
        'hour': drift_epoch_seconds('hour_floor'),
        'day': drift_epoch_seconds('day_floor'),
        'count': 'count_index',
        'deployment': 'cast(0 as bigint)',
    } -%}
    {%- for kind in kinds %}
    select distinct model_version, '{{ kind }}' as window_kind, {{ keys[kind] }} as window_key
    from {{ requests }}
    where {{ drift_changed_since(since, outcomes) }}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
{%- endmacro %}


{#- Where the rows of `relation` (re)written after `since` start, as literals a scan can prune by
    (min/max statistics): the day of the earliest event among them and their lowest count_index.
    Every touched hour or day window starts on or after that day, every touched count window has at
    least that index (the rows before keep their numbers). None when no row changed. -#}
{% macro drift_changed_from(relation, since, outcomes=false) -%}
    {%- set row = run_query(
        "select cast(" ~ dbt.date_trunc('day', 'min(event_at)') ~ " as " ~ dbt.type_string() ~ "), min(count_index) from " ~ relation
        ~ " where " ~ drift_changed_since(since, outcomes)).rows[0] -%}
    {%- if row[0] is none %}{{ return(none) }}{% endif -%}
    {{ return({'day': row[0], 'count_index': row[1]}) }}
{%- endmacro %}


{#- The rows of `relation` (aliased `alias`) in a window this run recomputes: the CTE `touched`
    (model_version, window_kind, window_key) of drift_touched_windows. -#}
{% macro drift_rows_in_touched(relation, alias) -%}
    select {{ alias }}.*
    from {{ relation }} as {{ alias }}
    inner join touched
        on touched.model_version = {{ alias }}.model_version
        and touched.window_kind = {{ alias }}.window_kind
        and touched.window_key = {{ alias }}.window_key
{%- endmacro %}


{#- Rows of `requests` that belong to a touched hour, day or count window (`touched`: a relation of
    drift_touched_windows), for the per-window aggregates of an incremental run. `changed_from`
    (drift_changed_from) first narrows them to the table's tail by literals, so the scan skips the
    untouched row groups and the window lookups run on the tail only. -#}
{% macro drift_in_touched_windows(requests, touched, kinds=['hour', 'day', 'count'], changed_from=none) -%}
    {%- set keys = {
        'hour': drift_epoch_seconds(requests ~ '.hour_floor'),
        'day': drift_epoch_seconds(requests ~ '.day_floor'),
        'count': requests ~ '.count_index',
    } -%}
    {%- if changed_from is none %}
    false
    {%- else %}
    ({{ requests }}.event_at >= cast('{{ changed_from.day }}' as timestamp)
        or {{ requests }}.count_index >= {{ changed_from.count_index }})
    and (
    {%- for kind in kinds %}
        exists (
            select 1 from {{ touched }}
            where {{ touched }}.model_version = {{ requests }}.model_version
                and {{ touched }}.window_kind = '{{ kind }}' and {{ touched }}.window_key = {{ keys[kind] }}
        ){% if not loop.last %} or{% endif %}
    {%- endfor %}
    )
    {%- endif %}
{%- endmacro %}


{#- Every numeric input of `relation` as rows (model_version, hour_floor, day_floor, count_index,
    feature, feature_index, value), missing values left out. feature_index is the input's position
    in var('loan_book').numeric_features (macro drift_feature_index): an integer key to sort and
    group by, which DuckDB compares far faster than the name. -#}
{% macro drift_numeric_long(relation) -%}
    {%- for name in var('loan_book').numeric_features %}
    select model_version, hour_floor, day_floor, count_index, '{{ name }}' as feature,
        {{ loop.index0 }} as feature_index, cast({{ name }} as double) as value
    from {{ relation }}
    where {{ name }} is not null
    {% if not loop.last %}union all{% endif %}
    {%- else %}
    {#- A book without numeric inputs: no rows, same columns. #}
    select model_version, hour_floor, day_floor, count_index, cast(null as {{ dbt.type_string() }}) as feature,
        cast(null as integer) as feature_index, cast(null as double) as value
    from {{ relation }}
    where false
    {%- endfor %}
{%- endmacro %}


{#- A numeric input's position in var('loan_book').numeric_features, from its name (`expression`). -#}
{% macro drift_feature_index(expression) -%}
    {%- if var('loan_book').numeric_features %}
    case {{ expression }}
        {%- for name in var('loan_book').numeric_features %}
        when '{{ name }}' then {{ loop.index0 }}
        {%- endfor %}
    end
    {%- else %}
    cast(null as integer)
    {%- endif %}
{%- endmacro %}


{#- A numeric input's name, from its position (`expression`, see drift_feature_index). -#}
{% macro drift_feature_name(expression) -%}
    {%- if var('loan_book').numeric_features %}
    case {{ expression }}
        {%- for name in var('loan_book').numeric_features %}
        when {{ loop.index0 }} then '{{ name }}'
        {%- endfor %}
    end
    {%- else %}
    cast(null as {{ dbt.type_string() }})
    {%- endif %}
{%- endmacro %}


{#- Counts of `long` (a relation with model_version, hour_floor, day_floor, count_index and the
    columns `keys`) per window of the kinds `kinds` (columns model_version, window_kind, window_key,
    `keys`, `measure`). With more than one kind, the rows are counted once per (hour, count window)
    cell and the window kinds are rolled up from those counts: DuckDB evaluates every grouping set
    over its whole input, so grouping the rows themselves by four sets would hash each row four
    times (an hour holds every row of its day, so the cells add up to every kind exactly). -#}
{% macro drift_window_counts(long, keys, kinds, measure='n_at') -%}
    {%- if kinds | length == 1 %}
    select
        model_version,
        {{ drift_window_kind(kinds) }} as window_kind,
        {{ drift_window_key(kinds) }} as window_key,
        {{ keys | join(', ') }},
        cast(count(*) as bigint) as {{ measure }}
    from {{ long }}
    group by {{ drift_grouping_sets(['model_version'] + keys, kinds) }}
    {%- else %}
    select
        model_version,
        {{ drift_window_kind(kinds) }} as window_kind,
        {{ drift_window_key(kinds) }} as window_key,
        {{ keys | join(', ') }},
        cast(sum(cell_count) as bigint) as {{ measure }}
    from (
        select model_version, hour_floor, day_floor, count_index, {{ keys | join(', ') }}, count(*) as cell_count
        from {{ long }}
        group by model_version, hour_floor, day_floor, count_index, {{ keys | join(", ") }}
    ) as cells
    group by {{ drift_grouping_sets(['model_version'] + keys, kinds) }}
    {%- endif %}
{%- endmacro %}


{#- mon_feature_histograms' production counts of `binned` (rows per request with `value` and the
    window columns): CTEs `window_<name>` and `production_<name>`, the latter with columns
    model_version, window_kind, window_key, feature, `value`, production_count.
    Full build (`incremental` false): every window kind counted from the rows.
    Incremental: the touched hour, day and count windows counted from the rows (`binned` holds only
    theirs), and the deployment as the sum of its days (days partition its requests): the days this
    mart already holds (`feature_kind` rows, `built_value` their value column, `built_filter` an
    extra condition on them) and the days recomputed now. No pass over every request. -#}
{% macro histogram_production_counts(name, binned, value, feature_kind, built_value, incremental, built_filter='') %}
    {%- if incremental %}
window_{{ name }} as (

    {{ drift_window_counts(binned, ['feature', value], ['hour', 'day', 'count'], 'production_count') }}

),

production_{{ name }} as (

    {{ drift_rows_in_touched('window_' ~ name, 'window_' ~ name) }}

    union all

    select model_version, 'deployment' as window_kind, cast(0 as bigint) as window_key, feature, {{ value }},
        cast(sum(production_count) as bigint) as production_count
    from (
        select built.model_version, built.feature, built.{{ built_value }} as {{ value }}, built.production_count
        from {{ this }} as built
        where built.window_kind = 'day' and built.feature_kind = '{{ feature_kind }}'{{ built_filter }}
            and not exists (
                select 1 from touched
                where touched.model_version = built.model_version and touched.window_kind = 'day'
                    and touched.window_key = built.window_key
            )
            and built.model_version in (select model_version from touched where window_kind = 'deployment')
        union all
        select window_{{ name }}.model_version, window_{{ name }}.feature, window_{{ name }}.{{ value }},
            window_{{ name }}.production_count
        from window_{{ name }}
        inner join touched
            on touched.model_version = window_{{ name }}.model_version
            and touched.window_kind = 'day'
            and touched.window_key = window_{{ name }}.window_key
        where window_{{ name }}.window_kind = 'day'
    ) as days
    group by model_version, feature, {{ value }}

),
    {%- else %}
production_{{ name }} as (

    {{ drift_window_counts(binned, ['feature', value], ['hour', 'day', 'count', 'deployment'], 'production_count') }}

),
    {%- endif %}
{% endmacro %}
