{#- Location quotients: lq = (e_rm / e_r) / (e_m / e_N); null, never inf or NaN, when a
    denominator is 0. -#}
WITH {% include "include/units.sql" %},
totals AS (
    SELECT year, province, partner, category, exports_usd, exports_cny,
           {{ exact_sum_over("exports_usd", "(PARTITION BY year, province, partner)") }} AS e_r,
           {{ exact_sum_over("exports_usd", "(PARTITION BY year, province, category)") }} AS e_m,
           {{ exact_sum_over("exports_usd", "(PARTITION BY year, province)") }} AS e_n
    FROM cells WHERE category <> '{{ all_categories }}' AND year IN ({{ years }})
)
SELECT year, province, partner, category, exports_usd, exports_cny,
       (exports_usd / nullif(e_r, 0.0)) / nullif(e_m / nullif(e_n, 0.0), 0.0) AS lq
FROM totals
ORDER BY year, province, partner, category
