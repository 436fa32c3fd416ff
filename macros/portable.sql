{#- SQL the engines spell differently, one dispatched macro each (DuckDB: default__ / duckdb__;
    Spark: spark__). Models call these, never an engine's own spelling (tests/unit/test_portable_sql.py
    greps models/ for the engine-only functions). -#}


{#- An aggregate: the list of one struct per row (fields named as the columns), ordered by
    `order_by` (columns among the fields). -#}
{% macro ordered_struct_list(fields, order_by) -%}
    {{ return(adapter.dispatch('ordered_struct_list', 'lendguard')(fields, order_by)) }}
{%- endmacro %}

{% macro default__ordered_struct_list(fields, order_by) -%}
    list(
        { {%- for field in fields %}'{{ field }}': {{ field }}{{ ", " if not loop.last }}{% endfor -%} }
        order by {{ order_by | join(', ') }}
    )
{%- endmacro %}

{#- Spark's collect_list has no order: sort by a struct of the keys, then keep the row's struct. -#}
{% macro spark__ordered_struct_list(fields, order_by) -%}
    transform(
        array_sort(collect_list(named_struct(
            'sort_key', named_struct({%- for field in order_by %}'{{ field }}', {{ field }}{{ ", " if not loop.last }}{% endfor -%}),
            'row', named_struct({%- for field in fields %}'{{ field }}', {{ field }}{{ ", " if not loop.last }}{% endfor -%})
        ))),
        entry -> entry.row
    )
{%- endmacro %}


{#- Which of `columns` a grouping-sets row aggregates over, as a bitmask (the first column the most
    significant bit), as DuckDB's grouping(a, b, ...). Spelled with one-column grouping(), which
    both engines have: Spark's grouping_id(a, b, ...) must name every grouping column. -#}
{% macro grouping_bits(columns) -%}
    ({%- for column in columns %}grouping({{ column }}) * {{ 2 ** (columns | length - loop.index) }}{{ " + " if not loop.last }}{% endfor -%})
{%- endmacro %}


{#- In a select list: one row per integer from `lower` to `upper` (both included). -#}
{% macro integer_series(lower, upper) -%}
    {{ return(adapter.dispatch('integer_series', 'lendguard')(lower, upper)) }}
{%- endmacro %}

{% macro default__integer_series(lower, upper) -%}
    unnest(generate_series({{ lower }}, {{ upper }}))
{%- endmacro %}

{% macro spark__integer_series(lower, upper) -%}
    explode(sequence({{ lower }}, {{ upper }}))
{%- endmacro %}


{#- Incremental marts whose runs replace whole keys (a window, a version's input): the key's rows
    are replaced by the run's. DuckDB: delete+insert on the unique_key. Spark's plain Parquet tables
    have no row-level delete: the key's columns partition the table and insert_overwrite replaces
    the partitions the run wrote (dynamic partition overwrite), the same rows. Use both together:
        incremental_strategy=incremental_replacing_strategy(),
        partition_by=incremental_replacing_partitions(unique_key) -#}
{% macro incremental_replacing_strategy() -%}
    {{ return(adapter.dispatch('incremental_replacing_strategy', 'lendguard')()) }}
{%- endmacro %}

{% macro default__incremental_replacing_strategy() -%}
    {{ return('delete+insert') }}
{%- endmacro %}

{% macro spark__incremental_replacing_strategy() -%}
    {{ return('insert_overwrite') }}
{%- endmacro %}

{% macro incremental_replacing_partitions(unique_key) -%}
    {{ return(adapter.dispatch('incremental_replacing_partitions', 'lendguard')(unique_key)) }}
{%- endmacro %}

{% macro default__incremental_replacing_partitions(unique_key) -%}
    {{ return(none) }}
{%- endmacro %}

{% macro spark__incremental_replacing_partitions(unique_key) -%}
    {{ return([unique_key] if unique_key is string else unique_key) }}
{%- endmacro %}


{#- Incremental marts whose runs only add rows of keys they do not hold yet (the run itself leaves
    out the keys already there): DuckDB keeps delete+insert on the unique_key (a no-op delete, and
    the same rows as it always built); Spark appends. -#}
{% macro incremental_appending_strategy() -%}
    {{ return(adapter.dispatch('incremental_appending_strategy', 'lendguard')()) }}
{%- endmacro %}

{% macro default__incremental_appending_strategy() -%}
    {{ return('delete+insert') }}
{%- endmacro %}

{% macro spark__incremental_appending_strategy() -%}
    {{ return('append') }}
{%- endmacro %}
