{#- The cells every plan reads, for the needed years: the cube's cells (the exact sums of
    the files' partial cubes) plus the national aggregate (origin `national`, the sum over
    provinces only: a reporter country in the same cube is its own origin) and the `all`
    category (the sum of the four categories), at partner level. Computed once per run and
    read by every plan: each plan reads its cells several times, and the engine would
    derive them from the cube again at every reference. -#}
WITH cube_years AS (
    SELECT year, province, partner, region, category,
           CAST(sum(exports_usd) AS DOUBLE) AS exports_usd,
           CAST(sum(exports_cny) AS DOUBLE) AS exports_cny
    FROM cube WHERE year IN ({{ needed_years }})
    GROUP BY year, province, partner, region, category
    HAVING sum(exports_usd) > 0
),
by_category AS (
    SELECT year, province, partner, region, category, exports_usd, exports_cny
    FROM cube_years
    UNION ALL
    SELECT year, '{{ national }}' AS province, partner, region, category,
           {{ exact_sum("exports_usd") }} AS exports_usd,
           {{ exact_sum("exports_cny") }} AS exports_cny
    FROM cube_years WHERE province IN ({{ provinces }})
    GROUP BY year, partner, region, category
)
SELECT year, province, partner, region, category, exports_usd, exports_cny
FROM by_category
UNION ALL
SELECT year, province, partner, region, '{{ all_categories }}' AS category,
       {{ exact_sum("exports_usd") }} AS exports_usd,
       {{ exact_sum("exports_cny") }} AS exports_cny
FROM by_category GROUP BY year, province, partner, region
