{#-
    A deterministic bucket in [0, buckets) from a key: the first 32 bits of its MD5, modulo buckets.
    Stable across engines and versions (unlike an engine's own hash()), and reproducible in Python:
    int(hashlib.md5(key.encode()).hexdigest()[:8], 16) % buckets.
-#}
{% macro hash_bucket(expression, buckets) -%}
    {{ return(adapter.dispatch('hash_bucket', 'lendguard')(expression, buckets)) }}
{%- endmacro %}

{% macro default__hash_bucket(expression, buckets) -%}
    (cast(conv(substr(md5(cast({{ expression }} as {{ dbt.type_string() }})), 1, 8), 16, 10) as bigint) % {{ buckets }})
{%- endmacro %}

{% macro duckdb__hash_bucket(expression, buckets) -%}
    (cast(('0x' || substr(md5(cast({{ expression }} as {{ dbt.type_string() }})), 1, 8)) as ubigint) % {{ buckets }})
{%- endmacro %}

{% macro postgres__hash_bucket(expression, buckets) -%}
    (('x' || substr(md5(cast({{ expression }} as {{ dbt.type_string() }})), 1, 8))::bit(32)::bigint % {{ buckets }})
{%- endmacro %}
