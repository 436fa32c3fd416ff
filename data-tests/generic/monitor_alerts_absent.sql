{#-
    A monitoring check: fails with the alert rows of `model` (mon_alerts) at `alert_severity`,
    optionally only for the checks listed in `checks`, or for every check not listed in `except_checks`.
    Give it dbt severity `warn` for warn alerts and `error` for critical ones; tag it `monitor`
    (`lendguard monitor` runs these; other builds leave them out).
    Arguments:
      alert_severity: warn or critical (mon_alerts.severity).
      checks: optional list of check_name values to look at.
      except_checks: optional list of check_name values to leave out.
-#}
{% test monitor_alerts_absent(model, alert_severity, checks=none, except_checks=none) %}

select
    alert_id,
    check_name,
    subject,
    model_version,
    window_kind,
    window_start,
    value,
    threshold,
    severity

from {{ model }}
where severity = '{{ alert_severity }}'
    {%- if checks %}
    and check_name in ('{{ checks | join("', '") }}')
    {%- endif %}
    {%- if except_checks %}
    and check_name not in ('{{ except_checks | join("', '") }}')
    {%- endif %}

{% endtest %}
