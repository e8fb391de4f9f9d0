{#- The strongest province-partner flows per category, ties broken by province then
    partner. Reporter countries and the national aggregate are not links of a province. -#}
WITH {% include "include/units.sql" %},
ranked AS (
    SELECT c.year, c.category, c.province, c.partner, c.exports_usd, c.exports_cny,
           c.exports_usd / t.national_total AS share_of_category,
           row_number() OVER (
               PARTITION BY c.year, c.category
               ORDER BY c.exports_usd DESC, c.province, c.partner
           ) AS rank
    FROM cells c
    JOIN (
        SELECT year, category, {{ exact_sum("exports_usd") }} AS national_total
        FROM cells WHERE province = '{{ national }}' GROUP BY year, category
    ) t ON c.year = t.year AND c.category = t.category
    WHERE c.province IN ({{ provinces }}) AND c.year IN ({{ years }})
)
SELECT year, category, CAST(rank AS BIGINT) AS rank, province, partner,
       exports_usd, exports_cny, share_of_category
FROM ranked WHERE rank <= {{ top_n }}
ORDER BY year, category, rank
