{#- National exports per destination, the threshold, and the status against the base
    year. A partner above the threshold in the base year that has no exports at all in a
    year (sanctions, a war, a closed border) is listed too, with zero exports, as `left`:
    in every year that has national exports, so a year without any data gets no rows. -#}
WITH {% include "include/units.sql" %},
national AS (
    SELECT year, partner, region, exports_usd, exports_cny,
           exports_cny >= {{ threshold_cny }} AS above_threshold
    FROM cells
    WHERE province = '{{ national }}' AND category = '{{ all_categories }}'
),
base AS (
    SELECT partner, region, above_threshold FROM national WHERE year = {{ base_year }}
),
run_years AS (SELECT DISTINCT year FROM national WHERE year IN ({{ years }})),
vanished AS (
    SELECT y.year, b.partner, b.region,
           0.0 AS exports_usd, 0.0 AS exports_cny, false AS above_threshold
    FROM run_years y
    CROSS JOIN base b
    LEFT JOIN national n ON n.year = y.year AND n.partner = b.partner
    WHERE b.above_threshold AND n.partner IS NULL
),
listed AS (
    SELECT year, partner, region, exports_usd, exports_cny, above_threshold
    FROM national WHERE year IN ({{ years }})
    UNION ALL
    SELECT year, partner, region, exports_usd, exports_cny, above_threshold
    FROM vanished
)
SELECT l.year, l.partner, l.region, l.exports_usd, l.exports_cny,
       l.above_threshold,
       CASE
           WHEN l.above_threshold AND coalesce(b.above_threshold, false) THEN 'stayed'
           WHEN l.above_threshold THEN 'entered'
           WHEN coalesce(b.above_threshold, false) THEN 'left'
           ELSE 'never'
       END AS status
FROM listed l LEFT JOIN base b ON l.partner = b.partner
ORDER BY l.year, l.partner
