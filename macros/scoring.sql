{#- The champion's batch-scoring query in the target's SQL, as {'version': ..., 'sql': ...}.

    When a version becomes the champion, ml.delivery.deploy_prod writes one
    `<engine>__champion_model_query` per engine into the deployment's state directory
    (Paths.champion_macros_dir, by default DATA_DIR/state/champion/dbt/), which lendguard gives every
    dbt run as a macro path (LENDGUARD_CHAMPION_MACROS_DIR, dbt_project.yml); adapter.dispatch picks
    the target's. Before any champion, none is there and this default gives none (score_loans is
    then empty). -#}
{% macro champion_model_query() -%}
    {{ return(adapter.dispatch('champion_model_query', 'lendguard')()) }}
{%- endmacro %}

{% macro default__champion_model_query() -%}
    {{ return(none) }}
{%- endmacro %}
