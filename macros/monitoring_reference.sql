{#- The evaluation each production window is judged against: per model version and group, the test-split
    evaluation of the version's deployed policy when it was the candidate, latest first (`recency` 1 is
    the one to use). Shared by the output-rate and label-free fairness marts. -#}
{% macro monitoring_deployed_reference(evaluations) %}
    select
        *,
        row_number() over (partition by model_version, method, group_name order by evaluated_at desc) as recency

    from {{ evaluations }}
    where role = 'candidate' and is_deployed_policy
{% endmacro %}


{#- CTEs `evaluations`, `reference` and `referenced`: the cells of `cells` (a relation of
    int_group_windows' shape) with their group's reference from the version's deployed policy, by
    the same method (self_reported or bisg): expected_rate and reference_n for the output rate,
    reference_fpr for label-free fairness. reference_n is the test split's effective size, its
    count scaled by repaid_effective / repaid (the evaluation's one effective size, macro
    effective_size): the count when self-reported, sum w for BISG probabilities. -#}
{% macro monitoring_referenced_cells(cells) %}
evaluations as (

    select * from {{ ref('stg_landing__evaluations') }}

),

reference as (

    {{ monitoring_deployed_reference('evaluations') }}
),

referenced as (

    select
        cells.*,
        reference.positive_rate as expected_rate,
        case
            when reference.method = 'self_reported' then reference.n
            else floor(reference.n * reference.repaid_effective / nullif(reference.repaid, 0))
        end as reference_n,
        reference.fpr as reference_fpr

    from {{ cells }} as cells
    left join reference
        on reference.model_version = cells.model_version
        and reference.group_name = cells.fairness_group
        and reference.method = cells.method
        and reference.recency = 1

)
{% endmacro %}


{#- Every row of `relation` with its window's FPR gap: max minus min of `fpr` over the window's groups
    `in_gap` (null with fewer than two), and how many groups are in it. -#}
{% macro monitoring_fpr_gaps(relation, fpr, gap_name) -%}
    select
        *,
        case when sum(case when in_gap then 1 else 0 end) over per_window >= 2 then
            max(case when in_gap then {{ fpr }} end) over per_window
            - min(case when in_gap then {{ fpr }} end) over per_window
        end as {{ gap_name }},
        cast(sum(case when in_gap then 1 else 0 end) over per_window as bigint) as groups_in_gap

    from {{ relation }}
    window per_window as (partition by model_version, method, window_kind, window_start, window_index)
{%- endmacro %}
