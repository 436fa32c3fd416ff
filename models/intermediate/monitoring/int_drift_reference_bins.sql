{#-
    Histogram bins of every numeric input per model version, fixed from the version's reference
    (its training rows): the distinct values among the reference's 1/B … (B-1)/B quantiles
    (percentile_disc, B = var('drift_histogram_bins')) are the edges; bins are (lower, upper],
    open at both ends, so every production value falls in exactly one. A feature with few distinct
    values (a loan term) has fewer bins.
-#}
{%- set lb = var('loan_book') -%}
{%- set bins = var('drift_histogram_bins') -%}

with reference as (

    select * from {{ ref('stg_landing__reference_inputs') }}

),

reference_long as (

    {%- for name in lb.numeric_features %}
    select model_version, '{{ name }}' as feature, cast({{ name }} as double) as value
    from reference
    where {{ name }} is not null
    {% if not loop.last %}union all{% endif %}
    {%- else %}
    {#- A book without numeric inputs: no rows, same columns. #}
    select model_version, cast(null as {{ dbt.type_string() }}) as feature, cast(null as double) as value
    from reference
    where false
    {%- endfor %}

),

quantiles as (

    select
        model_version,
        feature,
        {%- for k in range(1, bins) %}
        percentile_disc({{ k / bins }}) within group (order by value) as q{{ k }}{{ "," if not loop.last }}
        {%- endfor %}

    from reference_long
    group by model_version, feature

),

edges as (

    {%- for k in range(1, bins) %}
    select model_version, feature, q{{ k }} as edge from quantiles
    {% if not loop.last %}union{% endif %}
    {%- endfor %}

),

numbered as (

    select
        model_version,
        feature,
        edge,
        cast(row_number() over (partition by model_version, feature order by edge) as integer) as bin_index,
        lead(edge) over (partition by model_version, feature order by edge) as next_edge

    from edges

),

bins as (

    select
        model_version,
        feature,
        cast(0 as integer) as bin_index,
        cast(null as double) as bin_lower,
        edge as bin_upper
    from numbered
    where bin_index = 1

    union all

    select
        model_version,
        feature,
        bin_index,
        edge as bin_lower,
        next_edge as bin_upper
    from numbered

),

labelled as (

    select
        model_version,
        feature,
        bin_index,
        bin_lower,
        bin_upper,
        '(' || coalesce(cast(bin_lower as {{ dbt.type_string() }}), '-inf') || ', '
            || coalesce(cast(bin_upper as {{ dbt.type_string() }}) || ']', 'inf)') as bin

    from bins

)

select * from labelled
