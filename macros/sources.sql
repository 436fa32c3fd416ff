{#- Sources: both engines read the same landing-zone Parquet files.

    Each `landing` source declares where its files are once, as DuckDB reads them
    (`meta.external_location`: `read_parquet('<glob>', ...)`, which dbt-duckdb renders for
    `source()`). dbt's `source()` is overridden here to pass every landing source through
    `landing_relation`, dispatched per adapter: DuckDB keeps dbt-duckdb's rendering; Spark reads the
    same glob as `parquet.`<glob>``, with each `key=*` directory of the glob (Hive-style partitions,
    such as the loan book's `snapshot_id=<id>/`) as a string column, as DuckDB's
    `hive_partitioning = true, hive_types_autocast = false` gives it. Files of one dataset are read
    by column name on both (DuckDB's `union_by_name`; Spark's `spark.sql.parquet.mergeSchema`). -#}

{% macro source(source_name, table_name) -%}
    {%- set relation = builtins.source(source_name, table_name) -%}
    {%- if source_name != 'landing' or not execute -%}
        {{- return(relation) -}}
    {%- endif -%}
    {{- return(adapter.dispatch('landing_relation', 'lendguard')(relation, table_name)) -}}
{%- endmacro %}


{% macro default__landing_relation(relation, table_name) -%}
    {{- return(relation) -}}
{%- endmacro %}


{#- The glob inside a source's `read_parquet('<glob>', ...)` external location. -#}
{% macro landing_glob(table_name) -%}
    {%- set node = graph.sources['source.' ~ project_name ~ '.landing.' ~ table_name] -%}
    {%- set location = node.meta.external_location -%}
    {%- set found = modules.re.match("\s*read_parquet\(\s*'([^']+)'", location) -%}
    {%- if not found -%}
        {{ exceptions.raise_compiler_error("source landing." ~ table_name ~ ": meta.external_location must be read_parquet('<glob>', ...), got " ~ location) }}
    {%- endif -%}
    {{- return(found.group(1)) -}}
{%- endmacro %}


{% macro spark__landing_relation(relation, table_name) -%}
    {%- set glob = landing_glob(table_name) -%}
    {%- set partitions = modules.re.findall("([A-Za-z_][A-Za-z0-9_]*)=\*", glob) -%}
    {%- if not partitions -%}
        {{- return("parquet.`" ~ glob ~ "`") -}}
    {%- endif -%}
    {%- set columns = [] -%}
    {%- for key in partitions -%}
        {%- do columns.append("regexp_extract(_metadata.file_path, '/" ~ key ~ "=([^/]+)/', 1) as " ~ key) -%}
    {%- endfor -%}
    {{- return("(select *, " ~ columns | join(", ") ~ " from parquet.`" ~ glob ~ "`)") -}}
{%- endmacro %}


{#- `dbt source freshness` hands collect_freshness the source's relation itself (it never calls
    `source()`), which on Spark names a catalog table no one created: read the landing source's files
    as the models do. -#}
{% macro spark__collect_freshness(source, loaded_at_field, filter) -%}
    {%- set landing_id = 'source.' ~ project_name ~ '.landing.' ~ source.identifier -%}
    {%- set relation = spark__landing_relation(source, source.identifier) if landing_id in graph.sources else source -%}
    {{- return(dbt.default__collect_freshness(relation, loaded_at_field, filter)) -}}
{%- endmacro %}
