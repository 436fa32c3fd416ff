{#-
    The reference's empirical CDF at every distinct value of every numeric input, per model version:
    at the reference's own values and at every value production sent (so the KS statistic can be
    read at each production value without a per-window merge with the reference). Also the
    histogram bin of each value.
      reference_le: reference rows <= value;  reference_lt: reference rows < value.
-#}
{{ config(
    materialized='incremental',
    unique_key=['model_version', 'feature'],
    incremental_strategy=incremental_replacing_strategy(),
    partition_by=incremental_replacing_partitions(['model_version', 'feature']),
    on_schema_change='append_new_columns',
) }}
{#- Incremental: the distinct values already tabulated plus those of the days recounted since
    (batch_at), re-tabulated against the reference: a pass over distinct values, not over the log. -#}
{%- set lb = var('loan_book') -%}
{%- set since = drift_built_through() -%}

with reference as (

    select * from {{ ref('stg_landing__reference_inputs') }}

),

bins as (

    select * from {{ ref('int_drift_reference_bins') }}

),

reference_counts as (

    {%- for name in lb.numeric_features %}
    select model_version, '{{ name }}' as feature, cast({{ name }} as double) as value, count(*) as n_at
    from reference
    where {{ name }} is not null
    group by model_version, cast({{ name }} as double)
    {% if not loop.last %}union all{% endif %}
    {%- else %}
    {#- A book without numeric inputs: no rows, same columns. #}
    select model_version, cast(null as {{ dbt.type_string() }}) as feature, cast(null as double) as value, cast(0 as bigint) as n_at
    from reference
    where false
    {%- endfor %}

),

production_values as (

    {#- The distinct values production sent, from the daily value counts (far fewer rows than the
        requests; an incremental run reads only the days recounted since it last ran). #}
    select distinct model_version, feature, value, 0 as n_at
    from {{ ref('int_drift_value_counts_daily') }}
    {%- if since %}
    where batch_at > cast('{{ since }}' as timestamp)
    union all
    select model_version, feature, value, 0 as n_at from {{ this }}
    {%- endif %}

),

pooled as (

    select model_version, feature, value, sum(n_at) as reference_at
    from (
        select * from reference_counts
        union all
        select * from production_values
    ) as both_sides
    group by model_version, feature, value

),

cumulative as (

    select
        model_version,
        feature,
        value,
        cast(reference_at as bigint) as reference_at,
        cast(sum(reference_at) over (
            partition by model_version, feature order by value rows between unbounded preceding and current row
        ) as bigint) as reference_le,
        cast(sum(reference_at) over (
            partition by model_version, feature order by value rows between unbounded preceding and unbounded following
        ) as bigint) as n_reference

    from pooled

),

edges as (

    select model_version, feature, bin_upper as edge from bins where bin_upper is not null

),

binned as (

    select
        cumulative.model_version,
        cumulative.feature,
        cumulative.value,
        cast(count(edges.edge) as integer) as bin_index

    from cumulative
    left join edges
        on edges.model_version = cumulative.model_version
        and edges.feature = cumulative.feature
        and edges.edge < cumulative.value
    group by cumulative.model_version, cumulative.feature, cumulative.value

),

final as (

    select
        cumulative.model_version,
        cumulative.feature,
        cumulative.value,
        cumulative.reference_at,
        cumulative.reference_le,
        cumulative.reference_le - cumulative.reference_at as reference_lt,
        cumulative.n_reference,
        binned.bin_index,
        (select max(batch_at) from {{ ref('int_drift_requests') }}) as batch_at

    from cumulative
    inner join binned
        on binned.model_version = cumulative.model_version
        and binned.feature = cumulative.feature
        and binned.value = cumulative.value

)

select * from final
