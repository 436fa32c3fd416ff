{#-
    Categorical input drift (the categorical inputs and the group column) per model version,
    window and input, from the histograms (mon_feature_histograms).

    Smoothing (KL and PSI): over the union of the reference's categories and the categories the
    window sent (unseen ones included; a missing value is the category var('missing_category')),
    add a = var('drift_smoothing') to every count on both sides:
        p_i = (production_i + a) / (n_production + a K),  q_i = (reference_i + a) / (n_reference + a K),
    K the number of categories in the union. So an unseen category has a finite, large contribution.
      kl_divergence = sum p_i ln(p_i / q_i)           (production || training; scipy.stats.entropy(p, q))
      psi           = sum (p_i - q_i) ln(p_i / q_i)    (= KL(p||q) + KL(q||p))
      unseen_share  = raw production share of the categories the reference never had.
    Significance: Pearson's chi-square test of homogeneity on the raw 2 x K' table of counts (K' the
    categories with a count on either side; scipy.stats.chi2_contingency(table, correction=False)).
    Verdict (macro drift_verdict): p < drift_alpha / inputs tested per window AND
    psi >= drift_psi_warn / drift_psi_critical, in windows of at least drift_min_window_rows requests.
-#}
{{ config(
    materialized='incremental',
    unique_key=['model_version', 'window_kind', 'window_key'],
    incremental_strategy=incremental_replacing_strategy(),
    partition_by=incremental_replacing_partitions(['model_version', 'window_kind', 'window_key']),
    on_schema_change='append_new_columns',
) }}
{#- Incremental: the histogram windows recomputed since this mart's last run (their batch_at is newer),
    replaced whole. -#}
{%- set smoothing = 'cast(' ~ var('drift_smoothing') ~ ' as double)' -%}
{%- set since = drift_built_through() -%}

with histograms as (

    select * from {{ ref('mon_feature_histograms') }}
    where feature_kind = 'categorical'
    {%- if since %}
        and batch_at > cast('{{ since }}' as timestamp)
    {%- endif %}

),

cells as (

    select
        histograms.*,
        count(*) over (partition by model_version, window_kind, window_key, feature) as n_categories,
        sum(case when reference_count + production_count > 0 then 1 else 0 end)
            over (partition by model_version, window_kind, window_key, feature) as n_observed_categories

    from histograms

),

smoothed as (

    select
        cells.*,
        {{ drift_smoothed_share('production_count', 'n_production', smoothing, 'n_categories') }} as p,
        {{ drift_smoothed_share('reference_count', 'n_reference', smoothing, 'n_categories') }} as q,
        cast(n_production as double) * (reference_count + production_count) / (n_production + n_reference)
            as expected_production,
        cast(n_reference as double) * (reference_count + production_count) / (n_production + n_reference)
            as expected_reference

    from cells

),

{#- The sums of floating-point terms run over each window's categories in category order (a window
    frame), so they add in the same order on every run: a plain sum() may add them in another order
    from one run to the next (parallel partial aggregates) and differ in the last place. -#}
summed as (

    select
        smoothed.*,
        sum({{ drift_kl_term('p', 'q') }}) over ordered_categories as kl_sum,
        sum({{ drift_psi_term('p', 'q') }}) over ordered_categories as psi_sum,
        sum({{ drift_chi2_term('production_count', 'expected_production') }}
            + {{ drift_chi2_term('reference_count', 'expected_reference') }}) over ordered_categories as chi2_sum

    from smoothed
    window ordered_categories as (
        partition by model_version, window_kind, window_key, feature
        order by bin
        rows between unbounded preceding and unbounded following
    )

),

measured as (

    select
        model_version,
        window_kind,
        window_key,
        feature,
        max(window_index) as window_index,
        max(window_start) as window_start,
        max(window_end) as window_end,
        max(n_reference) as n_reference,
        max(n_production) as n_production,
        cast(max(n_categories) as integer) as n_categories,
        cast(sum(case when is_unseen and production_count > 0 then 1 else 0 end) as integer) as n_unseen_categories,
        cast(sum(case when is_unseen then production_count else 0 end) as double) / nullif(max(n_production), 0)
            as unseen_share,
        max(kl_sum) as kl_divergence,
        max(psi_sum) as psi,
        max(chi2_sum) as chi2_statistic,
        max(n_observed_categories) - 1 as chi2_dof,
        max(batch_at) as batch_at

    from summed
    group by model_version, window_kind, window_key, feature

),

tested as (

    select
        measured.*,
        case when chi2_dof > 0 and n_production > 0
            then {{ drift_chi2_p_value('chi2_statistic', 'chi2_dof') }}
        end as chi2_p_value

    from measured

),

final as (

    select
        model_version,
        window_kind,
        window_index,
        window_start,
        window_end,
        window_key,
        feature,
        n_reference,
        n_production,
        n_categories,
        n_unseen_categories,
        unseen_share,
        kl_divergence,
        psi,
        chi2_statistic,
        cast(chi2_dof as integer) as chi2_dof,
        chi2_p_value,
        {{ drift_alpha_per_test() }} as alpha_per_test,
        chi2_p_value < {{ drift_alpha_per_test() }} as is_significant,
        {{ drift_verdict('n_production', 'chi2_p_value', 'psi', var('drift_psi_warn'), var('drift_psi_critical')) }}
            as verdict,
        batch_at

    from tested

)

select * from final
