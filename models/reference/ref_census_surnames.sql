{#- P(group | surname) from the newest complete load, one row per surname and Census group. -#}

{{ census_reference_table(source('landing', 'census_surnames'), 'census_surnames', 'name', 'surname') }}
