{#- P(ZCTA | group) from the newest complete load, one row per ZCTA and Census group. A ZCTA
    the Census counted no one in has no values and no rows: BISG treats it as an unknown area. -#}

{{ census_reference_table(source('landing', 'census_zctas'), 'census_zctas', 'zcta5', 'zcta5') }}
