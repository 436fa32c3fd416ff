{{ config(
    materialized='incremental',
    unique_key=['model_version', 'window_kind', 'window_key'],
    incremental_strategy=incremental_replacing_strategy(),
    partition_by=incremental_replacing_partitions(['model_version', 'window_kind', 'window_key']),
    on_schema_change='append_new_columns',
) }}
{#-
    Training vs production histograms per model version, window and input, for charts (and the
    PSI / KL / chi-square statistics of mon_drift_numeric and mon_drift_categorical).
    Numeric inputs: the version's reference bins (int_drift_reference_bins: its quantiles, open
    ends), every bin in every window. Categorical inputs and the group column: every category of the
    reference in every window, plus any category production sent that the reference never had
    (is_unseen). Shares are raw (unsmoothed) fractions of the non-missing values of each side.
    Incremental: only the windows holding requests numbered since the last run (int_drift_requests
    .batch_at) are recomputed, and replaced whole (macros/drift.sql); the deployment's counts are
    the sum of its day windows' (the ones kept and the ones recomputed), so no pass over every request.
-#}
{%- set lb = var('loan_book') -%}
{%- set since = drift_built_through() -%}

with all_requests as (

    select * from {{ ref('int_drift_requests') }}

),

{%- if since %}

touched as (

    {{ drift_touched_windows('all_requests', since) }}

),

requests as (

    select * from all_requests
    where {{ drift_in_touched_windows('all_requests', 'touched', changed_from=drift_changed_from(ref('int_drift_requests'), since)) }}

),

windows as (

    {{ drift_rows_in_touched(ref('int_drift_windows'), 'windows') }}

),

{%- else %}

requests as (

    select * from all_requests

),

windows as (

    select * from {{ ref('int_drift_windows') }}

),

{%- endif %}

reference as (

    select * from {{ ref('stg_landing__reference_inputs') }}

),

bins as (

    select * from {{ ref('int_drift_reference_bins') }}

),

reference_values as (

    select * from {{ ref('int_drift_reference_values') }}

),

-- numeric inputs ---------------------------------------------------------------------------------

production_numeric as (

    {{ drift_numeric_long('requests') }}

),

production_numeric_binned as (

    select
        production_numeric.model_version,
        production_numeric.hour_floor,
        production_numeric.day_floor,
        production_numeric.count_index,
        production_numeric.feature,
        reference_values.bin_index

    from production_numeric
    inner join reference_values
        on reference_values.model_version = production_numeric.model_version
        and reference_values.feature = production_numeric.feature
        and reference_values.value = production_numeric.value

),

{{ histogram_production_counts('bin_counts', 'production_numeric_binned', 'bin_index', 'numeric', 'bin_index', since) }}

reference_bin_counts as (

    select
        model_version,
        feature,
        bin_index,
        cast(sum(reference_at) as bigint) as reference_count

    from reference_values
    group by model_version, feature, bin_index

),

numeric_cells as (

    select
        windows.model_version,
        windows.window_kind,
        windows.window_key,
        bins.feature,
        'numeric' as feature_kind,
        bins.bin,
        bins.bin_index,
        bins.bin_lower,
        bins.bin_upper,
        false as is_unseen,
        coalesce(reference_bin_counts.reference_count, 0) as reference_count,
        coalesce(production_bin_counts.production_count, 0) as production_count

    from windows
    inner join bins on bins.model_version = windows.model_version
    left join reference_bin_counts
        on reference_bin_counts.model_version = bins.model_version
        and reference_bin_counts.feature = bins.feature
        and reference_bin_counts.bin_index = bins.bin_index
    left join production_bin_counts
        on production_bin_counts.model_version = windows.model_version
        and production_bin_counts.window_kind = windows.window_kind
        and production_bin_counts.window_key = windows.window_key
        and production_bin_counts.feature = bins.feature
        and production_bin_counts.bin_index = bins.bin_index

),

-- categorical inputs and the group column ------------------------------------------------------

{%- set categorical = [] if lb.group_column is none else [(lb.group_column, 'fairness_group')] %}
{%- for name in lb.categorical_features %}{% do categorical.append((name, name)) %}{% endfor %}

production_categorical as (

    {%- for subject, column in categorical %}
    select model_version, hour_floor, day_floor, count_index, '{{ subject }}' as feature, {{ column }} as category
    from requests
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}

),

{{ histogram_production_counts('category_counts', 'production_categorical', 'category', 'categorical', 'bin', since,
                                built_filter=' and built.production_count > 0') }}

reference_category_counts as (

    {%- for subject, column in categorical %}
    select model_version, '{{ subject }}' as feature, {{ drift_category(column) }} as category, cast(count(*) as bigint) as reference_count
    from reference
    group by model_version, {{ drift_category(column) }}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}

),

reference_categories_per_window as (

    select
        windows.model_version,
        windows.window_kind,
        windows.window_key,
        reference_category_counts.feature,
        reference_category_counts.category,
        reference_category_counts.reference_count

    from windows
    inner join reference_category_counts on reference_category_counts.model_version = windows.model_version

),

categorical_cells as (

    select
        coalesce(known.model_version, seen.model_version) as model_version,
        coalesce(known.window_kind, seen.window_kind) as window_kind,
        coalesce(known.window_key, seen.window_key) as window_key,
        coalesce(known.feature, seen.feature) as feature,
        'categorical' as feature_kind,
        coalesce(known.category, seen.category) as bin,
        cast(null as integer) as bin_index,
        cast(null as double) as bin_lower,
        cast(null as double) as bin_upper,
        known.category is null as is_unseen,
        coalesce(known.reference_count, 0) as reference_count,
        coalesce(seen.production_count, 0) as production_count

    from reference_categories_per_window as known
    full outer join production_category_counts as seen
        on seen.model_version = known.model_version
        and seen.window_kind = known.window_kind
        and seen.window_key = known.window_key
        and seen.feature = known.feature
        and seen.category = known.category

),

-- both ---------------------------------------------------------------------------------------------

cells as (

    select * from numeric_cells
    union all
    select * from categorical_cells

),

shared as (

    select
        cells.*,
        sum(reference_count) over (partition by model_version, window_kind, window_key, feature) as n_reference,
        sum(production_count) over (partition by model_version, window_kind, window_key, feature) as n_production

    from cells

),

final as (

    select
        shared.model_version,
        shared.window_kind,
        windows.window_index,
        windows.window_start,
        windows.window_end,
        shared.window_key,
        shared.feature,
        shared.feature_kind,
        shared.bin,
        shared.bin_index,
        shared.bin_lower,
        shared.bin_upper,
        shared.is_unseen,
        shared.reference_count,
        shared.production_count,
        cast(shared.n_reference as bigint) as n_reference,
        cast(shared.n_production as bigint) as n_production,
        cast(shared.reference_count as double) / nullif(shared.n_reference, 0) as reference_share,
        cast(shared.production_count as double) / nullif(shared.n_production, 0) as production_share,
        (select max(batch_at) from all_requests) as batch_at

    from shared
    inner join windows
        on windows.model_version = shared.model_version
        and windows.window_kind = shared.window_kind
        and windows.window_key = shared.window_key

)

select * from final
