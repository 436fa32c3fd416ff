{#- Requests per day of event time, API key (caller) and model version: who sends what, and how much of it
    is refused. The volume measures of mon_ops_daily, split by caller ('' in open mode and for requests
    refused before their key was checked). -#}

{{ mon_ops_rollup('day', group_by=['caller']) }}

select
    window_start as day_start,
    window_end as day_end,
    caller,
    model_version,
    requests,
    accepted,
    errors,
    errors_validation,
    errors_auth,
    errors_server,
    scored,
    positive_predictions,
    error_rate

from rated
