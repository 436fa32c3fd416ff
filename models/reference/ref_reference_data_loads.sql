{#- Every load of the Census tables: which file, its SHA-256 and rows; the newest per table is in use. -#}

with loads as (

    select * from {{ source('landing', 'reference_data_loads') }}

)

select
    load_id,
    dataset,
    source,
    sha256,
    row_count,
    loaded_at,
    loaded_by,
    load_id = max(load_id) over (partition by dataset) as is_current

from loads
