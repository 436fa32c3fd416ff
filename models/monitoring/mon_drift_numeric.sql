{#-
    Numeric input drift per model version, window and input: the two-sample Kolmogorov–Smirnov
    test of production against the version's training rows, plus PSI over the reference bins.

    D = max over x of |F_production(x) - F_reference(x)|, read at every distinct production value v
    both at v (rows <= v) and just below it (rows < v): between two production values F_production
    is flat and F_reference only rises, so the largest gap is at one of those points. Each term is
    computed as count / n - count / m in double precision, the same operations as
    scipy.stats.ks_2samp on the same counts, so D equals SciPy's exactly (ties included).
    p-value: scipy.stats.ks_2samp(method='asymp') = kstwo.sf(D, round(m*n / (m+n))), through the
    SciPy UDF (macro drift_ks_p_value); with a reference over 10,000 rows it is also 'auto'. SciPy
    takes milliseconds per value, so it is computed only where the verdict depends on it (a window
    of at least drift_min_window_rows with D >= drift_ks_d_warn; every row with var
    drift_all_p_values); elsewhere ks_p_value is null and the verdict is decided without it.
    PSI = sum over bins of (p - q) * ln(p / q) with p, q the production and reference shares after
    adding var('drift_smoothing') to every bin's count on both sides.
    Verdict (macro drift_verdict): significance (p < drift_alpha / inputs tested per window) AND
    effect size (D >= drift_ks_d_warn / drift_ks_d_critical), in windows of at least
    drift_min_window_rows requests.
-#}
{{ config(
    materialized='incremental',
    unique_key=['model_version', 'window_kind', 'window_key'],
    incremental_strategy=incremental_replacing_strategy(),
    partition_by=incremental_replacing_partitions(['model_version', 'window_kind', 'window_key']),
    on_schema_change='append_new_columns',
) }}
{#- Incremental: only the windows holding requests numbered since the last run (int_drift_requests
    .batch_at) are recomputed, and replaced whole (macros/drift.sql). -#}
{%- set lb = var('loan_book') -%}
{%- set smoothing = 'cast(' ~ var('drift_smoothing') ~ ' as double)' -%}
{%- set ks_kinds = var('drift_ks_window_kinds') -%}
{#- Day and deployment value counts come from int_drift_value_counts_daily (they add up); the
    finer kinds are counted from the requests. -#}
{%- set row_kinds = ks_kinds | reject('in', ['day', 'deployment']) | list -%}
{%- set since = drift_built_through() -%}

with all_requests as (

    select * from {{ ref('int_drift_requests') }}

),

{%- if since %}

touched as (

    {{ drift_touched_windows('all_requests', since, ks_kinds) }}

),

requests as (

    select * from all_requests
    {%- if row_kinds %}
    where {{ drift_in_touched_windows('all_requests', 'touched', row_kinds,
                                      drift_changed_from(ref('int_drift_requests'), since)) }}
    {%- else %}
    where false
    {%- endif %}

),

windows as (

    {{ drift_rows_in_touched(ref('int_drift_windows'), 'windows') }}

),

histograms as (

    {{ drift_rows_in_touched(ref('mon_feature_histograms'), 'histograms') }}
    where histograms.feature_kind = 'numeric'

),

{%- else %}

requests as (

    select * from all_requests

),

windows as (

    select * from {{ ref('int_drift_windows') }}

),

histograms as (

    select * from {{ ref('mon_feature_histograms') }}
    where feature_kind = 'numeric'

),

{%- endif %}

{#- The KS statistic runs on integer keys: the production CDF is a sort of every window's distinct
    values, and DuckDB sorts one integer key (window_feature_key, one per window and input) much
    faster than the text window kind and feature name. The names come back in `ks`. -#}
reference_values as (

    select
        model_version,
        {{ drift_feature_index('feature') }} as feature_index,
        value,
        reference_le,
        reference_lt,
        n_reference

    from {{ ref('int_drift_reference_values') }}

),

production_numeric as (

    {{ drift_numeric_long('requests') }}

),

daily_value_counts as (

    select * from {{ ref('int_drift_value_counts_daily') }}
    {%- if since %}
    where model_version in (select model_version from touched where window_kind = 'deployment')
    {%- endif %}

),

value_counts as (

    {%- set parts = [] %}
    {%- if row_kinds %}{% do parts.append('rows') %}{% endif %}
    {%- if 'day' in ks_kinds %}{% do parts.append('day') %}{% endif %}
    {%- if 'deployment' in ks_kinds %}{% do parts.append('deployment') %}{% endif %}
    {%- for part in parts %}
    {%- if part == 'rows' %}
    {{ drift_window_counts('production_numeric', ['feature_index', 'value'], row_kinds, 'n_at') }}
    {%- elif part == 'day' %}
    select model_version, 'day' as window_kind, window_key, {{ drift_feature_index('feature') }} as feature_index,
        value, n_at
    from daily_value_counts
    {%- if since %}
    where exists (
        select 1 from touched
        where touched.model_version = daily_value_counts.model_version
            and touched.window_kind = 'day' and touched.window_key = daily_value_counts.window_key
    )
    {%- endif %}
    {%- else %}
    select model_version, 'deployment' as window_kind, cast(0 as bigint) as window_key,
        {{ drift_feature_index('feature') }} as feature_index, value, cast(sum(n_at) as bigint) as n_at
    from daily_value_counts
    group by model_version, feature, value
    {%- endif %}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}

),

coded_value_counts as (

    select
        model_version,
        case window_kind
            {%- for kind in monitoring_window_kinds() %}
            when '{{ kind }}' then {{ loop.index0 }}
            {%- endfor %}
        end as window_code,
        window_key,
        feature_index,
        value,
        n_at

    from value_counts

),

keyed_value_counts as (

    {#- One integer per (window_code, window_key, feature_index), distinct for distinct triples
        (mixed radix: window_code < the number of window kinds, feature_index < the number of inputs). -#}
    select
        *,
        (window_key * {{ monitoring_window_kinds() | length }} + window_code) * {{ lb.numeric_features | length }}
            + feature_index as window_feature_key

    from coded_value_counts

),

production_cdf as (

    select
        model_version,
        window_code,
        window_key,
        feature_index,
        value,
        n_at,
        sum(n_at) over (
            partition by model_version, window_feature_key
            order by value rows between unbounded preceding and current row
        ) as production_le,
        sum(n_at) over (partition by model_version, window_feature_key) as n_production

    from keyed_value_counts

),

gaps as (

    select
        production_cdf.model_version,
        production_cdf.window_code,
        production_cdf.window_key,
        production_cdf.feature_index,
        production_cdf.n_production,
        reference_values.n_reference,
        {{ drift_ks_gap('production_cdf.production_le', 'production_cdf.n_at', 'production_cdf.n_production',
                        'reference_values.reference_le', 'reference_values.reference_lt',
                        'reference_values.n_reference') }} as gap

    from production_cdf
    inner join reference_values
        on reference_values.model_version = production_cdf.model_version
        and reference_values.feature_index = production_cdf.feature_index
        and reference_values.value = production_cdf.value

),

ks as (

    select
        model_version,
        case window_code
            {%- for kind in monitoring_window_kinds() %}
            when {{ loop.index0 }} then '{{ kind }}'
            {%- endfor %}
        end as window_kind,
        window_key,
        {{ drift_feature_name('feature_index') }} as feature,
        cast(max(n_production) as bigint) as n_production,
        cast(max(n_reference) as bigint) as n_reference,
        max(gap) as ks_d

    from gaps
    group by model_version, window_code, window_key, feature_index

),

smoothed as (

    select
        model_version,
        window_kind,
        window_key,
        feature,
        {{ drift_smoothed_share('production_count', 'n_production', smoothing, 'count(*) over (
            partition by model_version, window_kind, window_key, feature)') }} as p,
        {{ drift_smoothed_share('reference_count', 'n_reference', smoothing, 'count(*) over (
            partition by model_version, window_kind, window_key, feature)') }} as q

    from histograms

),

psi as (

    select
        model_version,
        window_kind,
        window_key,
        feature,
        cast(count(*) as integer) as n_bins,
        sum({{ drift_psi_term('p', 'q') }}) as psi

    from smoothed
    group by model_version, window_kind, window_key, feature

),

tested as (

    select
        ks.*,
        case
            when {{ var('drift_all_p_values') }}
                or (ks.n_production >= {{ var('drift_min_window_rows') }} and ks.ks_d >= {{ var('drift_ks_d_warn') }})
            then {{ drift_ks_p_value('ks.ks_d', 'ks.n_production', 'ks.n_reference') }}
        end as ks_p_value,
        psi.n_bins,
        psi.psi

    from ks
    left join psi
        on psi.model_version = ks.model_version
        and psi.window_kind = ks.window_kind
        and psi.window_key = ks.window_key
        and psi.feature = ks.feature

),

final as (

    select
        tested.model_version,
        tested.window_kind,
        windows.window_index,
        windows.window_start,
        windows.window_end,
        tested.window_key,
        tested.feature,
        windows.n_requests,
        tested.n_reference,
        tested.n_production,
        tested.ks_d,
        tested.ks_p_value,
        tested.n_bins,
        tested.psi,
        {{ drift_alpha_per_test() }} as alpha_per_test,
        tested.ks_p_value < {{ drift_alpha_per_test() }} as is_significant,
        {{ drift_verdict('tested.n_production', 'tested.ks_p_value', 'tested.ks_d',
                         var('drift_ks_d_warn'), var('drift_ks_d_critical')) }} as verdict,
        (select max(batch_at) from all_requests) as batch_at

    from tested
    inner join windows
        on windows.model_version = tested.model_version
        and windows.window_kind = tested.window_kind
        and windows.window_key = tested.window_key

)

select * from final
