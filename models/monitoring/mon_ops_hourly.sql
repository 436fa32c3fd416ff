{#- Operations per hour of event time and model version: volume, errors by kind, decisions, mode, latency. -#}

{{ mon_ops_rollup('hour') }}

select
    window_start as hour_start,
    window_end as hour_end,
    {{ mon_ops_measures() }}

from rated
