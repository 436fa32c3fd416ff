{#- The evaluation each production window is judged against: per model version and group, the test-split
    evaluation of the version's deployed policy when it was the candidate, latest first (`recency` 1 is
    the one to use). Shared by the output-rate and label-free fairness marts. -#}
{% macro monitoring_deployed_reference(evaluations) %}
    select
        *,
        row_number() over (partition by model_version, group_name order by evaluated_at desc) as recency

    from {{ evaluations }}
    where role = 'candidate' and is_deployed_policy
{% endmacro %}
