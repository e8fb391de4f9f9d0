{#- `product_margins` (with `product-margins = true`): growth from t-1 to t of each
    origin's exports to each destination, split over HS6 products h: with x_h the exports
    of h to the destination in t and x0_h in t-1,
        delta = sum x_h - sum x0_h = new - lost + continuing,
        new = sum of x_h over products not exported there in t-1 (x0_h = 0),
        lost = sum of x0_h over products no longer exported there (x_h = 0),
        continuing = sum of (x_h - x0_h) over products exported there in both years,
    in USD and CNY, with the counts of new, lost and continuing products. Rows per partner,
    per region of partners (partner `all`) and over all (`all`, `all`), per category and
    over all categories (category `all`): each product is in one category.
    The Hummels-Klenow margins of year t at product level, against a reference R (the
    nation, or the nation without the origin: `product-reference`), over the (partner,
    product) pairs P of the row's destinations and category, the origin serving S of them:
        hk_extensive = sum over S of R / sum over P of R,
        hk_intensive = the origin's exports / sum over S of R;
    null for the national aggregate and for reporter countries, as in `indices`. Only years
    whose previous year is in the cube have rows. -#}
{%- macro growth(x1, x0) -%}
{{ exact_sum(x1) }} - {{ exact_sum(x0) }}
{%- endmacro %}
{%- macro parts(x1, x0, currency) -%}
{{ growth(x1, x0) }} AS delta_{{ currency }},
           {{ exact_sum("CASE WHEN x0 = 0.0 THEN " ~ x1 ~ " ELSE 0.0 END") }} AS new_{{ currency }},
           {{ exact_sum("CASE WHEN x1 = 0.0 THEN " ~ x0 ~ " ELSE 0.0 END") }} AS lost_{{ currency }},
           {{ exact_sum("CASE WHEN x0 > 0.0 AND x1 > 0.0 THEN " ~ x1 ~ " - " ~ x0 ~ " ELSE 0.0 END") }}
               AS continuing_{{ currency }}
{%- endmacro %}
{%- macro destination_sets(keys) -%}
GROUPING SETS (
    ({{ keys }}, category, region, partner), ({{ keys }}, category, region),
    ({{ keys }}, category), ({{ keys }}, region, partner), ({{ keys }}, region), ({{ keys }})
)
{%- endmacro %}
WITH product_cells AS (
    SELECT year, province, partner, region, category, product,
           sum(exports_usd) AS usd_exact,
           CAST(sum(exports_usd) AS DOUBLE) AS usd,
           CAST(sum(exports_cny) AS DOUBLE) AS cny
    FROM products WHERE year IN ({{ needed_years }})
    GROUP BY year, province, partner, region, category, product
    HAVING sum(exports_usd) > 0
),
origins AS (
    SELECT year, province, partner, region, category, product, usd_exact, usd, cny
    FROM product_cells
    UNION ALL
    SELECT year, '{{ national }}' AS province, partner, region, category, product,
           sum(usd_exact) AS usd_exact, CAST(sum(usd_exact) AS DOUBLE) AS usd,
           {{ exact_sum("cny") }} AS cny
    FROM product_cells WHERE province IN ({{ provinces }})
    GROUP BY year, partner, region, category, product
),
pairs AS (
    SELECT coalesce(c.year, CAST(p.year + 1 AS INT)) AS year,
           coalesce(c.province, p.province) AS province,
           coalesce(c.partner, p.partner) AS partner,
           coalesce(c.region, p.region) AS region,
           coalesce(c.category, p.category) AS category,
           coalesce(c.usd, 0.0) AS x1, coalesce(p.usd, 0.0) AS x0,
           coalesce(c.cny, 0.0) AS y1, coalesce(p.cny, 0.0) AS y0
    FROM (SELECT * FROM origins WHERE year IN ({{ years_with_previous }})) c
    FULL OUTER JOIN (SELECT * FROM origins WHERE year + 1 IN ({{ years_with_previous }})) p
      ON c.year = p.year + 1 AND c.province = p.province AND c.partner = p.partner
     AND c.category = p.category AND c.product = p.product
),
growth AS (
    SELECT year, province,
           coalesce(category, '{{ all_categories }}') AS category,
           coalesce(region, 'all') AS region, coalesce(partner, 'all') AS partner,
           {{ parts("x1", "x0", "usd") }},
           {{ parts("y1", "y0", "cny") }},
           sum(CASE WHEN x0 = 0.0 THEN 1 ELSE 0 END) AS new_products,
           sum(CASE WHEN x1 = 0.0 THEN 1 ELSE 0 END) AS lost_products,
           sum(CASE WHEN x0 > 0.0 AND x1 > 0.0 THEN 1 ELSE 0 END) AS continuing_products
    FROM pairs
    GROUP BY {{ destination_sets("year, province") }}
),
{#- The reference's sums stay exact decimals until they are divided: the nation without a
    province that alone serves a pair is then exactly 0 there, not a rounding residue. #}
reference AS (
    SELECT year, partner, region, category, product, usd_exact AS national
    FROM origins
    WHERE province = '{{ national }}' AND year IN ({{ years_with_previous }})
),
reference_totals AS (
    SELECT year,
           coalesce(category, '{{ all_categories }}') AS category,
           coalesce(region, 'all') AS region, coalesce(partner, 'all') AS partner,
           sum(national) AS national
    FROM reference
    GROUP BY {{ destination_sets("year") }}
),
served AS (
    SELECT year, province,
           coalesce(category, '{{ all_categories }}') AS category,
           coalesce(region, 'all') AS region, coalesce(partner, 'all') AS partner,
           sum(own) AS own, sum(reference) AS served
    FROM (
        SELECT o.year, o.province, o.partner, o.region, o.category, o.usd_exact AS own,
{%- if product_reference == "rest-of-nation" %}
               r.national - o.usd_exact AS reference
{%- else %}
               r.national AS reference
{%- endif %}
        FROM origins o
        JOIN reference r
          ON o.year = r.year AND o.partner = r.partner AND o.category = r.category
         AND o.product = r.product
        WHERE o.province IN ({{ provinces }})
    )
    GROUP BY {{ destination_sets("year, province") }}
),
hk AS (
    SELECT s.year, s.province, s.category, s.region, s.partner,
{%- if product_reference == "rest-of-nation" %}
           CAST(t.national - s.own AS DOUBLE) AS reference_total,
{%- else %}
           CAST(t.national AS DOUBLE) AS reference_total,
{%- endif %}
           CAST(s.served AS DOUBLE) AS served, CAST(s.own AS DOUBLE) AS own
    FROM served s
    JOIN reference_totals t
      ON s.year = t.year AND s.category = t.category AND s.region = t.region
     AND s.partner = t.partner
)
SELECT g.year, g.province, g.category, g.region, g.partner,
       g.delta_usd, g.new_usd, g.lost_usd, g.continuing_usd,
       g.delta_cny, g.new_cny, g.lost_cny, g.continuing_cny,
       g.new_products, g.lost_products, g.continuing_products,
       CASE WHEN h.reference_total > 0.0 THEN h.served / h.reference_total END
           AS hk_extensive,
       CASE WHEN h.served > 0.0 THEN h.own / h.served END AS hk_intensive
FROM growth g
LEFT JOIN hk h
  ON g.year = h.year AND g.province = h.province AND g.category = h.category
 AND g.region = h.region AND g.partner = h.partner
ORDER BY year, province, category, region, partner
