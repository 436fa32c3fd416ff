{#-
    In-warehouse batch scoring: the champion's compiled query over the loan book's features.

    The query is an artifact of the approved model version (compiled from its PMML, in each engine's
    SQL, when it became the champion: ml.delivery.deploy_prod.install_champion_sql), not a file of
    this project: dbt finds it as the macro champion_model_query (macros/scoring.sql) and runs it
    here over feat_loans, which it reads as model_features. Every row records the model version that
    scored it. With no champion yet, the table is empty.
-#}
{%- set champion = champion_model_query() -%}

with model_features as (

    select * from {{ ref('feat_loans') }}

),

{%- if champion %}

scored as (

    {{ champion.sql }}

)

select
    loan_id,
    fairness_group,
    probability,
    '{{ champion.version }}' as model_version

from scored

{%- else %}

unscored as (

    select
        loan_id,
        fairness_group,
        cast(null as double) as probability,
        cast(null as {{ dbt.type_string() }}) as model_version

    from model_features
    where false

)

select * from unscored

{%- endif %}
