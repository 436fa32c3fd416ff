{#-
    Label-free fairness: each group's false-positive rate estimated from the calibrated
    probabilities, per model version and window, before any outcome is known. With p the predicted
    probability of default, a request is a negative (repaid) with probability 1 - p, so
    expected negatives = sum(1 - p), expected false positives = sum over flagged requests of (1 - p),
    estimated FPR = expected false positives / expected negatives. The window's gap is max - min of
    the estimated FPR over groups with at least var('estimated_fpr_min_expected_negatives') expected
    negatives.
    A count window is judged over a sliding union: itself and the count windows before it,
    var('estimated_fpr_count_windows') in all (fewer for the first ones). One count window (2,000
    requests) holds enough expected negatives for the largest group only, so the gap could never be
    judged on it; the union holds them for every group with a few percent of traffic, and is
    made of closed windows once window k closes, so its verdict never changes after that.
    windows_in_union says how many count windows a row adds up; window_start is the union's start.
    Per method (self_reported, bisg): sums weighted by group membership (int_group_windows), so with
    BISG a group's estimated FPR is sum(w·flagged·(1 - p)) / sum(w·(1 - p)); the gap is per method.
-#}
{%- set union_windows = var('estimated_fpr_count_windows') -%}

with cells as (

    select * from {{ ref('int_group_windows') }}

),

count_windows as (

    select
        model_version,
        window_index,
        min(window_start) as window_start,
        max(window_end) as window_end

    from cells
    where window_kind = 'count'
    group by model_version, window_index

),

count_unions as (

    {#- Count window k with the groups of windows k - K + 1 .. k. #}
    select
        target.model_version,
        'count' as window_kind,
        target.window_index,
        min(min(cells.window_start)) over (partition by target.model_version, target.window_index) as window_start,
        target.window_end,
        cells.method,
        cells.fairness_group,
        cast(sum(cells.n) as bigint) as n,
        sum(cells.positives) as positives,
        sum(cells.expected_negatives) as expected_negatives,
        sum(cells.expected_false_positives) as expected_false_positives,
        cast(least(target.window_index + 1, {{ union_windows }}) as bigint) as windows_in_union

    from count_windows as target
    inner join cells
        on cells.model_version = target.model_version
        and cells.window_kind = 'count'
        and cells.window_index between target.window_index - {{ union_windows - 1 }} and target.window_index
    group by target.model_version, target.window_index, target.window_end, cells.method, cells.fairness_group

),

judged_cells as (

    select
        model_version, window_kind, window_index, window_start, window_end, method, fairness_group,
        n, positives, expected_negatives, expected_false_positives,
        cast(1 as bigint) as windows_in_union

    from cells
    where window_kind <> 'count'

    union all

    select
        model_version, window_kind, window_index, window_start, window_end, method, fairness_group,
        n, positives, expected_negatives, expected_false_positives,
        windows_in_union

    from count_unions

),

{{ monitoring_referenced_cells('judged_cells') }},

estimated as (

    select
        model_version,
        window_kind,
        window_index,
        window_start,
        window_end,
        method,
        fairness_group,
        n,
        positives,
        expected_negatives,
        expected_false_positives,
        {{ monitoring_estimated_fpr('expected_false_positives', 'expected_negatives') }} as estimated_fpr,
        reference_fpr,
        expected_negatives >= {{ var('estimated_fpr_min_expected_negatives') }} as in_gap,
        windows_in_union

    from referenced

),

gaps as (

    {{ monitoring_fpr_gaps('estimated', 'estimated_fpr', 'estimated_fpr_gap') }}

)

select * from gaps
