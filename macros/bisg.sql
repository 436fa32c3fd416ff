{#-
    BISG: P(group | surname, area) = P(group | surname) * P(area | group) / sum over groups of the same.

    Surnames are normalised as the Census and the CFPB's method do: digits, punctuation and white
    space removed, upper case, then a trailing JR, SR, III or IV removed (in that order, as the
    published reference implementation does). A compound surname not in the table as a whole is
    looked up by its first part, then its last part (split at a hyphen or a space); a surname still
    not found takes the table's 'ALL OTHER NAMES' row. An area not in the geography table (or one
    where the product is zero for every group) leaves the surname's probabilities alone, normalised
    to sum to one. Census groups map to the loan book's groups through the `bisg_groups` var.
-#}

{% macro lg_normalize_surname(expression) -%}
    {{ return(adapter.dispatch('lg_normalize_surname', 'lendguard')(expression)) }}
{%- endmacro %}

{% macro default__lg_normalize_surname(expression) -%}
    regexp_replace(regexp_replace(regexp_replace(regexp_replace(
        upper(regexp_replace(coalesce(cast({{ expression }} as {{ dbt.type_string() }}), ''), '[0-9[:punct:][:space:]]', '', 'g')),
        'JR$', ''), 'SR$', ''), 'III$', ''), 'IV$', '')
{%- endmacro %}

{#- Spark: Java regular expressions spell the POSIX classes \p{Punct} and \s (ASCII, as DuckDB's)
    and replace every match without a flag. -#}
{% macro spark__lg_normalize_surname(expression) -%}
    regexp_replace(regexp_replace(regexp_replace(regexp_replace(
        upper(regexp_replace(coalesce(cast({{ expression }} as {{ dbt.type_string() }}), ''), '[0-9\\p{Punct}\\s]', '')),
        'JR$', ''), 'SR$', ''), 'III$', ''), 'IV$', '')
{%- endmacro %}

{% macro lg_normalize_zcta(expression) -%}
    {#- Five characters, zero-padded on the left (a ZIP+4 keeps its first five digits). -#}
    lpad(substr(trim(cast({{ expression }} as {{ dbt.type_string() }})), 1, 5), 5, '0')
{%- endmacro %}

{% macro census_reference_table(relation, dataset, key, key_name) -%}
with loads as (

    select max(load_id) as load_id
    from {{ source('landing', 'reference_data_loads') }}
    where dataset = '{{ dataset }}'

),

published as (

    select * from {{ relation }}
    where load_id = (select load_id from loads)

)

{% for census_group, group_name in var('bisg_groups').items() %}
select
    cast({{ key }} as {{ dbt.type_string() }}) as {{ key_name }},
    '{{ census_group }}' as census_group,
    '{{ group_name }}' as group_name,
    cast({{ census_group }} as double) as probability,
    load_id
from published
where {{ census_group }} is not null
{{ "union all" if not loop.last }}
{% endfor %}
{%- endmacro %}

{% macro bisg_probabilities(applicants, id_column, surname_column, area_column) -%}
{#- One row per applicant and group: probability, and how it was reached (`bisg`, `surname_only`). -#}
with applicants as (

    select
        {{ id_column }} as applicant_id,
        {{ lg_normalize_surname(surname_column) }} as surname_key,
        {{ lg_normalize_surname("regexp_extract(upper(trim(" ~ surname_column ~ ")), '^([^- ]+)[- ]', 1)") }} as first_part,
        {{ lg_normalize_surname("regexp_extract(upper(trim(" ~ surname_column ~ ")), '[- ]([^- ]+)$', 1)") }} as last_part,
        {{ lg_normalize_zcta(area_column) }} as zcta5
    from {{ applicants }}

),

known_surnames as (

    select distinct surname from {{ ref('ref_census_surnames') }}

),

matched as (

    select
        applicants.applicant_id,
        applicants.zcta5,
        coalesce(whole.surname, first_part.surname, last_part.surname, 'ALL OTHER NAMES') as surname,
        case
            when whole.surname is not null then 'surname'
            when first_part.surname is not null then 'compound_first_part'
            when last_part.surname is not null then 'compound_last_part'
            else 'all_other_names'
        end as surname_match
    from applicants
    left join known_surnames as whole on whole.surname = applicants.surname_key
    left join known_surnames as first_part on first_part.surname = applicants.first_part
    left join known_surnames as last_part on last_part.surname = applicants.last_part

),

surname_evidence as (

    select
        matched.applicant_id,
        matched.zcta5,
        matched.surname_match,
        surnames.census_group,
        surnames.group_name,
        surnames.probability as p_group_given_surname
    from matched
    inner join {{ ref('ref_census_surnames') }} as surnames on surnames.surname = matched.surname

),

{{ bisg_combine('surname_evidence') }}
{%- endmacro %}

{% macro bisg_combine(surname_evidence) -%}
{#- The CTEs and final select that combine P(group | surname) with P(area | group): `surname_evidence`
    has one row per applicant and Census group (applicant_id, zcta5, surname_match, census_group,
    group_name, p_group_given_surname). Shared by bisg_probabilities (names) and
    bisg_from_surname_evidence (the API's logged evidence), so both give the same numbers. -#}
joined as (

    select
        surname_evidence.applicant_id,
        surname_evidence.surname_match,
        surname_evidence.census_group,
        surname_evidence.group_name,
        surname_evidence.p_group_given_surname,
        areas.probability as p_area_given_group
    from {{ surname_evidence }} as surname_evidence
    left join {{ ref('ref_census_zctas') }} as areas
        on areas.zcta5 = surname_evidence.zcta5 and areas.census_group = surname_evidence.census_group

),

evidence as (

    select
        *,
        sum(p_group_given_surname * p_area_given_group) over (partition by applicant_id) as area_evidence,
        sum(p_group_given_surname) over (partition by applicant_id) as surname_total
    from joined

)

select
    applicant_id,
    census_group,
    group_name,
    case
        when area_evidence > 0 then p_group_given_surname * p_area_given_group / area_evidence
        else p_group_given_surname / surname_total
    end as probability,
    case when area_evidence > 0 then 'bisg' else 'surname_only' end as bisg_method,
    surname_match
from evidence
{%- endmacro %}

{% macro bisg_from_surname_evidence(applicants, id_column, area_column) -%}
{#- BISG of logged requests: the API logs, instead of the surname, its row of the Census surname table
    (columns surname_p_<census group>, null where the table has none, and surname_match: see
    warehouse/prediction_log.py); combined with P(area | group) as bisg_probabilities does. -#}
with applicants as (

    select
        {{ id_column }} as applicant_id,
        {{ lg_normalize_zcta(area_column) }} as zcta5,
        surname_match,
        {%- for census_group in var('bisg_groups') %}
        surname_p_{{ census_group }}{{ "," if not loop.last }}
        {%- endfor %}
    from {{ applicants }}

),

surname_evidence as (

    {%- for census_group, group_name in var('bisg_groups').items() %}
    select
        applicant_id,
        zcta5,
        surname_match,
        '{{ census_group }}' as census_group,
        '{{ group_name }}' as group_name,
        surname_p_{{ census_group }} as p_group_given_surname
    from applicants
    where surname_p_{{ census_group }} is not null
    {{ "union all" if not loop.last }}
    {%- endfor %}

),

{{ bisg_combine('surname_evidence') }}
{%- endmacro %}
