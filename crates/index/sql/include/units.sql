{#- Common table expressions every table's plan starts with:
    `cells`: the needed years' cells (see cells.sql);
    `units`: the destination units concentration and margins count, partners or regions. -#}
cells AS (
    SELECT year, province, partner, region, category, exports_usd, exports_cny
    FROM {{ cells_table }} WHERE year IN ({{ needed_years }})
),
units AS (
{%- if destination_level == "country" %}
    SELECT year, province, category, partner AS unit, region, exports_usd, exports_cny
    FROM cells
{%- else %}
    SELECT year, province, category, region AS unit, region,
           {{ exact_sum("exports_usd") }} AS exports_usd,
           {{ exact_sum("exports_cny") }} AS exports_cny
    FROM cells GROUP BY year, province, category, region
{%- endif %}
)
