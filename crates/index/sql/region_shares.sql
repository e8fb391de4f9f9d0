{#- Each destination region's share of an origin's exports of a category. -#}
WITH {% include "include/units.sql" %},
regions AS (
    SELECT year, province, region, category, {{ exact_sum("exports_usd") }} AS exports_usd,
           {{ exact_sum("exports_cny") }} AS exports_cny
    FROM cells WHERE year IN ({{ years }})
    GROUP BY year, province, region, category
)
SELECT year, province, region, category, exports_usd, exports_cny,
       exports_usd
           / {{ exact_sum_over("exports_usd", "(PARTITION BY year, province, category)") }}
           AS share
FROM regions
ORDER BY year, province, category, region
