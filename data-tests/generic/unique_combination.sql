{#-
    Fails for every combination of `columns` that occurs more than once.
    Arguments:
      columns: list of column names that together form the key.
-#}
{% test unique_combination(model, columns) %}

with keyed as (

    select
        {{ columns | join(', ') }},
        count(*) as occurrences

    from {{ model }}
    group by {{ columns | join(', ') }}

)

select * from keyed
where occurrences > 1

{% endtest %}
