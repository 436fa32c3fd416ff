{#-
    The model-deployment gate: fails with the offending row (measured value and limit) when the
    check named `check` did not pass for the version under gate.
    Arguments:
      check: a check_name of eval_gate_checks (fpr_gap, auc, calibration_error, cost_vs_champion,
             group_test_rows, threshold_for_every_group, evaluated, monotone_risk).
-#}
{% test gate_check_passes(model, check) %}

select
    model_version,
    check_name,
    subject,
    measured_value,
    limit_value,
    comparison

from {{ model }}
where check_name = '{{ check }}' and not passed

{% endtest %}
