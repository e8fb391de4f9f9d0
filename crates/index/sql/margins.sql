{#- Growth from t-1 to t over destination units: delta = new - lost + intensive, per
    destination region and over all regions (region `all`), in USD and in CNY (`_cny`; a
    unit is new or lost by its USD exports, which are positive exactly when its CNY ones are). Only years whose previous
    year is in the cube have rows. -#}
{%- macro terms_of(x1, x0, suffix) -%}
{{ exact_sum(x1) }} - {{ exact_sum(x0) }} AS delta{{ suffix }},
       {{ exact_sum("CASE WHEN x0 = 0.0 THEN " ~ x1 ~ " ELSE 0.0 END") }} AS new{{ suffix }},
       {{ exact_sum("CASE WHEN x1 = 0.0 THEN " ~ x0 ~ " ELSE 0.0 END") }} AS lost{{ suffix }},
       {{ exact_sum("CASE WHEN x0 > 0.0 AND x1 > 0.0 THEN " ~ x1 ~ " - " ~ x0 ~ " ELSE 0.0 END") }}
           AS intensive{{ suffix }}
{%- endmacro %}
{%- macro terms() -%}
{{ terms_of("x1", "x0", "") }},
       {{ terms_of("y1", "y0", "_cny") }}
{%- endmacro %}
WITH {% include "include/units.sql" %},
current_units AS (SELECT * FROM units WHERE year IN ({{ years_with_previous }})),
previous_units AS (SELECT * FROM units WHERE year + 1 IN ({{ years_with_previous }})),
pairs AS (
    SELECT coalesce(c.year, CAST(p.year + 1 AS INT)) AS year,
           coalesce(c.province, p.province) AS province,
           coalesce(c.category, p.category) AS category,
           coalesce(c.region, p.region) AS region,
           coalesce(c.exports_usd, 0.0) AS x1,
           coalesce(p.exports_usd, 0.0) AS x0,
           coalesce(c.exports_cny, 0.0) AS y1,
           coalesce(p.exports_cny, 0.0) AS y0
    FROM current_units c
    FULL OUTER JOIN previous_units p
      ON c.year = p.year + 1 AND c.province = p.province
     AND c.category = p.category AND c.unit = p.unit
)
SELECT year, province, category, region, {{ terms() }}
FROM pairs GROUP BY year, province, category, region
UNION ALL
SELECT year, province, category, 'all' AS region, {{ terms() }}
FROM pairs GROUP BY year, province, category
ORDER BY year, province, category, region
