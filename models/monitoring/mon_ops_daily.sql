{#- Operations per day of event time and model version: volume, errors by kind, decisions, mode, latency. -#}

{{ mon_ops_rollup('day') }}

select
    window_start as day_start,
    window_end as day_end,
    {{ mon_ops_measures() }}

from rated
