{#-
    The gate for one candidate: one row per check with the measured value, the limit (from vars)
    and whether it passed. The gate tests (tag `gate`) fail on any row that did not pass.
    The version under gate is var('gate_version'), else the most recently evaluated candidate.
    Fairness is judged with the primary method, the overall row's: the self-reported groups when the
    loan book declares a group column, else BISG's probability-weighted ones (ml.metrics).
-#}
{%- set gate_version = var('gate_version', none) -%}

with evaluations as (

    select * from {{ ref('eval_metrics') }}

),

thresholds as (

    select * from {{ ref('eval_thresholds') }}

),

monotone_sweeps as (

    select * from {{ ref('eval_monotone_sweeps') }}

),

gated_version as (

    {% if gate_version is not none -%}
    select cast('{{ gate_version }}' as {{ dbt.type_string() }}) as model_version
    {%- else -%}
    select candidate_version as model_version
    from evaluations
    order by evaluated_at desc
    limit 1
    {%- endif %}

),

candidate as (

    select evaluations.*
    from evaluations
    inner join gated_version on evaluations.candidate_version = gated_version.model_version
    where evaluations.role = 'candidate' and evaluations.is_deployed_policy

),

champion as (

    select evaluations.*
    from evaluations
    inner join gated_version on evaluations.candidate_version = gated_version.model_version
    where evaluations.role = 'champion' and evaluations.is_deployed_policy and evaluations.group_name = '__overall__'

),

overall as (

    select * from candidate where group_name = '__overall__'

),

evaluated as (

    select
        gated_version.model_version,
        'evaluated' as check_name,
        'evaluation rows' as subject,
        cast((select count(*) from candidate) as double) as measured_value,
        cast(1 as double) as limit_value,
        '>=' as comparison
    from gated_version

),

fpr_gap as (

    select
        max(candidate.model_version) as model_version,
        'fpr_gap' as check_name,
        'groups with at least {{ var("fpr_gap_min_repaid") }} repaid test loans ('
            || coalesce(max(candidate.method), (select max(method) from overall), 'no groups') || ')' as subject,
        max(candidate.fpr) - min(candidate.fpr) as measured_value,
        cast({{ var('max_fpr_gap') }} as double) as limit_value,
        '<=' as comparison
    from candidate
    -- BISG groups count by their effective size (Kish's, at most the sum of weights); self-reported ones by their repaid loans
    where candidate.group_name <> '__overall__'
        and candidate.method = (select method from overall)
        and candidate.repaid_effective >= {{ var('fpr_gap_min_repaid') }}

),

auc as (

    select
        model_version,
        'auc' as check_name,
        'all applicants' as subject,
        auc as measured_value,
        cast({{ var('min_auc') }} as double) as limit_value,
        '>=' as comparison
    from overall

),

calibration as (

    select
        model_version,
        'calibration_error' as check_name,
        'all applicants' as subject,
        calibration_error as measured_value,
        cast({{ var('max_calibration_error') }} as double) as limit_value,
        '<=' as comparison
    from overall

),

cost_vs_champion as (

    select
        overall.model_version,
        'cost_vs_champion' as check_name,
        case
            when champion.model_version is null then 'no champion yet'
            else 'relative to champion version ' || champion.model_version
        end as subject,
        overall.cost_per_applicant / nullif(champion.cost_per_applicant, 0) - 1 as measured_value,
        cast({{ var('max_cost_increase') }} as double) as limit_value,
        '<=' as comparison
    from overall
    left join champion on true

),

group_test_rows as (

    select
        candidate.model_version,
        'group_test_rows' as check_name,
        candidate.group_name as subject,
        cast(candidate.n as double) as measured_value,
        cast({{ var('min_group_test_rows') }} as double) as limit_value,
        '>=' as comparison
    from candidate
    inner join thresholds
        on thresholds.model_version = candidate.model_version
        and thresholds.policy = candidate.policy
        and thresholds.group_name = candidate.group_name
    where not thresholds.is_fallback and candidate.method = 'self_reported'

),

loan_book_groups as (

    select distinct fairness_group from {{ ref('feat_loans') }}
    where fairness_group is not null  -- a book without a group column has none

),

deployed_thresholds as (

    select thresholds.*
    from thresholds
    inner join gated_version on thresholds.model_version = gated_version.model_version
    where thresholds.policy = '{{ var("deployed_policy") }}'

),

threshold_coverage as (

    select
        (select model_version from gated_version) as model_version,
        'threshold_for_every_group' as check_name,
        'loan-book groups without a threshold row' as subject,
        cast(count(*) as double) as measured_value,
        cast(0 as double) as limit_value,
        '<=' as comparison
    from loan_book_groups
    left join deployed_thresholds on deployed_thresholds.group_name = loan_book_groups.fairness_group
    where deployed_thresholds.group_name is null

),

sweep_steps as (

    select
        monotone_sweeps.model_version,
        monotone_sweeps.feature,
        monotone_sweeps.direction,
        -- how far risk moves against the declared direction from the previous grid point
        case
            when monotone_sweeps.direction = 'increasing'
                then (lag(monotone_sweeps.probability) over sweep) - monotone_sweeps.probability
            else monotone_sweeps.probability - (lag(monotone_sweeps.probability) over sweep)
        end as reversal

    from monotone_sweeps
    inner join gated_version on monotone_sweeps.model_version = gated_version.model_version
    window sweep as (partition by monotone_sweeps.feature order by monotone_sweeps.value)

),

monotone_risk as (

    select
        model_version,
        'monotone_risk' as check_name,
        feature || ' (' || direction || ' in risk)' as subject,
        greatest(coalesce(max(reversal), 0), 0) as measured_value,
        cast({{ var('max_monotone_reversal') }} as double) as limit_value,
        '<=' as comparison
    from sweep_steps
    group by model_version, feature, direction

),

checks as (

    select * from evaluated
    union all select * from fpr_gap
    union all select * from auc
    union all select * from calibration
    union all select * from cost_vs_champion
    union all select * from group_test_rows
    union all select * from threshold_coverage
    union all select * from monotone_risk

),

judged as (

    select
        *,
        case
            when measured_value is null then check_name in ('cost_vs_champion')
            when comparison = '<=' then measured_value <= limit_value
            else measured_value >= limit_value
        end as passed

    from checks

)

select * from judged
