{#-
    The upgrade path of an existing warehouse, run once by an operator after installing a new
    version: `lendguard upgrade` (or `dbt run-operation upgrade_warehouse`), before the next build.
    Never part of a build: an every-run hook would add a round trip to each run and commit from
    inside dbt's transactions, which not every adapter allows. Each step is idempotent.

    1. Renamed models: a table an earlier version built under a model's former name is renamed to
       the new one, keeping its rows (the copy of the prediction log numbers every request in
       ingestion order: a rebuild from scratch would renumber late replica files by receipt time,
       and a closed count window must never change). A former view is dropped (the build makes
       it again), and so is a former table whose new name a build already made.
    2. Outdated incremental marts: one whose delete+insert key has a column the existing table
       lacks (built by an earlier version) is dropped: an incremental run could not replace its old
       rows (the key never matches them), and the next build builds it whole (cheap).
    Each change is logged as "lendguard-upgrade: renamed <old> to <new>" or "lendguard-upgrade:
    dropped <name> (why)"; the CLI reports them. Portable: the adapter's own catalogue calls.
-#}
{% macro upgrade_warehouse() %}
    {#- The monitoring plumbing moved to models/intermediate/monitoring (int_*). -#}
    {%- set renamed = {
        'mon_requests': 'int_requests',
        'mon_drift_requests': 'int_drift_requests',
        'mon_scored_requests': 'int_scored_requests',
        'mon_drift_windows': 'int_drift_windows',
        'mon_drift_reference_bins': 'int_drift_reference_bins',
        'mon_drift_reference_values': 'int_drift_reference_values',
        'mon_drift_value_counts_daily': 'int_drift_value_counts_daily',
        'mon_group_windows': 'int_group_windows',
    } -%}
    {%- set outdated = {'int_group_windows': ['window_key', 'batch_at', 'first_reported_at', 'method']} -%}
    {%- for old, new in renamed.items() -%}
        {%- set former = adapter.get_relation(database=target.database, schema=target.schema, identifier=old) -%}
        {%- if former is not none -%}
            {%- set current = adapter.get_relation(database=target.database, schema=target.schema, identifier=new) -%}
            {%- if former.is_view or current is not none -%}
                {%- do adapter.drop_relation(former) -%}
                {%- do log("lendguard-upgrade: dropped " ~ old ~ " (now " ~ new ~ ", which the build makes)", info=true) -%}
            {%- else -%}
                {%- do adapter.rename_relation(former, former.incorporate(path={'identifier': new})) -%}
                {%- do log("lendguard-upgrade: renamed " ~ old ~ " to " ~ new, info=true) -%}
            {%- endif -%}
        {%- endif -%}
    {%- endfor -%}
    {%- for name, columns in outdated.items() -%}
        {%- set relation = adapter.get_relation(database=target.database, schema=target.schema, identifier=name) -%}
        {%- if relation is not none -%}
            {%- set existing = adapter.get_columns_in_relation(relation) | map(attribute='name') | map('lower') | list -%}
            {%- if columns | reject('in', existing) | list -%}
                {%- do adapter.drop_relation(relation) -%}
                {%- do log("lendguard-upgrade: dropped " ~ name ~ " (built before it had " ~ columns | join(", ") ~ ")", info=true) -%}
            {%- endif -%}
        {%- endif -%}
    {%- endfor -%}
    {#- run-operation leaves its transaction open: commit the changes (a no-op where the adapter has none). -#}
    {%- do adapter.commit() -%}
{% endmacro %}
