{#-
    The monitoring statistics, one definition each, so every engine computes them with the same
    double-precision operations in the same order (DuckDB and Spark agree to 1e-9, checked by
    tests/spark/test_statistics.py on both engines against SciPy and closed forms).
    Every argument is a SQL expression; the counts may be integers (each division here is by a
    double or casts first, so no engine divides integers).
    SciPy's distribution functions (p-values, quantiles) are in macros/binomial.sql and
    macros/drift.sql (adapter-dispatched UDF calls).
-#}

{#- One side of the two-sample KS statistic at a production value v: the larger of the gaps between
    the empirical CDFs at v (rows <= v) and just below it (rows < v), each count / n - count / m in
    double precision, as scipy.stats.ks_2samp computes them. `production_le` production rows <= v,
    `production_at` rows = v, `n_production`; `reference_le`, `reference_lt`, `n_reference` likewise.
    D is the max over every production value (mon_drift_numeric). -#}
{% macro drift_ks_gap(production_le, production_at, n_production, reference_le, reference_lt, n_reference) -%}
    greatest(
        abs(cast({{ production_le }} as double) / {{ n_production }}
            - cast({{ reference_le }} as double) / {{ n_reference }}),
        abs(cast({{ production_le }} - {{ production_at }} as double) / {{ n_production }}
            - cast({{ reference_lt }} as double) / {{ n_reference }})
    )
{%- endmacro %}


{#- A smoothed share: (count + a) / (n + a K), a = `smoothing` added to each of the K = `categories` cells. -#}
{% macro drift_smoothed_share(count, n, smoothing, categories) -%}
    ({{ count }} + {{ smoothing }}) / ({{ n }} + {{ smoothing }} * {{ categories }})
{%- endmacro %}


{#- One cell's term of the population stability index: (p - q) ln(p / q); PSI = the sum over cells. -#}
{% macro drift_psi_term(p, q) -%}
    ({{ p }} - {{ q }}) * ln({{ p }} / {{ q }})
{%- endmacro %}


{#- One cell's term of the KL divergence KL(p || q) = sum p ln(p / q) (scipy.stats.entropy(p, q)). -#}
{% macro drift_kl_term(p, q) -%}
    {{ p }} * ln({{ p }} / {{ q }})
{%- endmacro %}


{#- One cell's term of Pearson's chi-square statistic, (observed - expected)^2 / expected; 0 for an
    empty expected cell (a category neither side has: it is not in the table). -#}
{% macro drift_chi2_term(observed, expected) -%}
    case when {{ expected }} > 0
        then ({{ observed }} - {{ expected }}) * ({{ observed }} - {{ expected }}) / {{ expected }}
        else 0 end
{%- endmacro %}


{#- Label-free false-positive rate: expected false positives / expected negatives (sums of 1 - p over
    the flagged and over all requests); null without expected negatives. -#}
{% macro monitoring_estimated_fpr(expected_false_positives, expected_negatives) -%}
    {{ expected_false_positives }} / nullif({{ expected_negatives }}, 0)
{%- endmacro %}


{#- How many applicants probability weights are worth: least(Kish's (sum w)^2 / sum w^2, sum w), the
    group's expected size for membership probabilities (ml.metrics.effective_sample_size, the gate's
    one definition); the row count when every weight is 1. Null when there are no weights. -#}
{% macro effective_size(weights, weight_squares) -%}
    least({{ weights }} * {{ weights }} / nullif({{ weight_squares }}, 0), {{ weights }})
{%- endmacro %}
