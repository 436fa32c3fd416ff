{#- The latest state of every stage of every pipeline run (stage events are appended). -#}

with events as (

    select * from {{ ref('stg_landing__pipeline_runs') }}

),

{#- A stage that starts waiting lands running, then waiting, with the same times: the state that
    follows running wins the tie. -#}
ranked as (

    select
        *,
        row_number() over (
            partition by pipeline_run_id, stage
            order by coalesce(ended_at, started_at) desc, started_at desc, status = 'running'
        ) as recency

    from events

),

latest as (

    select
        pipeline_run_id,
        stage,
        status,
        started_at,
        ended_at,
        actor,
        model_version,
        mlflow_run_id,
        details

    from ranked
    where recency = 1

)

select * from latest
