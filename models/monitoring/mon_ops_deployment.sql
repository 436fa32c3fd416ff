{#- Operations over each model version's whole deployment: volume, errors by kind, decisions, mode, latency. -#}

{{ mon_ops_rollup('deployment') }}

select
    {{ mon_ops_measures() }}

from rated
