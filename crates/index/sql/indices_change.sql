{#- Every index in long form with its change against the previous and the base year, and
    the compound annual growth of exports since the base year, in USD and in CNY. One pass over the index
    values: the long form is a cross join with the list of index names, and the
    comparisons are window functions over each origin's series of an index. -#}
{%- set change_indices = [
    "exports_usd", "exports_cny", "destinations", "hhi", "hhi_norm", "entropy", "evenness",
    "equivalent_markets", "equivalent_markets_entropy", "theil", "theil_between",
    "theil_within", "specialization", "hk_extensive", "hk_intensive"
] %}
WITH {% include "include/units.sql" %},
{% include "include/index_values.sql" %},
long AS (
    SELECT v.year, v.province, v.category, i.index, i.index_order,
           CASE i.index
           {%- for index in change_indices %}
               WHEN '{{ index }}' THEN CAST(v.{{ index }} AS DOUBLE)
           {%- endfor %}
           END AS value,
           v.exports_usd, v.exports_cny
    FROM index_values v
    CROSS JOIN (VALUES
    {%- for index in change_indices %}
        ('{{ index }}', {{ loop.index0 }}){% if not loop.last %},{% endif %}
    {%- endfor %}
    ) AS i(index, index_order)
),
series AS (
    SELECT year, province, category, index, index_order, value, exports_usd, exports_cny,
           lag(year) OVER ordered AS previous_year,
           lag(value) OVER ordered AS previous_value,
           max(CASE WHEN year = {{ base_year }} THEN value END) OVER whole AS base_value,
           max(CASE WHEN year = {{ base_year }} THEN exports_usd END) OVER whole
               AS base_exports,
           max(CASE WHEN year = {{ base_year }} THEN exports_cny END) OVER whole
               AS base_exports_cny
    FROM long
    WINDOW ordered AS (PARTITION BY province, category, index ORDER BY year),
           whole AS (PARTITION BY province, category, index)
)
SELECT year, province, category, index, value,
       CASE WHEN previous_year = year - 1 THEN value - previous_value END
           AS change_from_previous,
       value - base_value AS change_from_base,
       CASE WHEN year > {{ base_year }} AND base_exports > 0.0
            THEN power(exports_usd / base_exports,
                       1.0 / CAST(year - {{ base_year }} AS DOUBLE)) - 1.0
       END AS exports_cagr,
       CASE WHEN year > {{ base_year }} AND base_exports_cny > 0.0
            THEN power(exports_cny / base_exports_cny,
                       1.0 / CAST(year - {{ base_year }} AS DOUBLE)) - 1.0
       END AS exports_cagr_cny
FROM series
WHERE year IN ({{ years }})
ORDER BY year, province, category, index_order
