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
    whose previous year is in the cube have rows.
    Every sum is of the product cube's exact decimals, first per partner, then rolled up to
    regions, categories and all: the parts add up to the growth exactly, each value is
    rounded once when it becomes a double, and the result does not depend on the order the
    engine adds in, so the plan may run in several partitions.
    It reads the product cube's partial cubes (table `products`), keyed by one integer per
    origin, partner, category and product (`key`, see `exdep_engine::cell_sql`), grouped by
    partner and category: `exdep_product_growth` (see `exdep_engine::ProductGrowth`) sums
    each group's products by year and origin and for the nation, pairs each year with the
    previous one and yields the sums per year and place (`place`, the key without its
    product, a cell that `exdep_cell_part` reads). Codes are read back only from those
    sums; a partner's region is the cells'. -#}
{%- macro destination_sets(keys) -%}
GROUPING SETS (
    ({{ keys }}, category, region, partner), ({{ keys }}, category, region),
    ({{ keys }}, category), ({{ keys }}, region, partner), ({{ keys }}, region), ({{ keys }})
)
{%- endmacro %}
{%- macro rolled_up(key) -%}
coalesce({{ key }}, '{{ "all" if key != "category" else all_categories }}') AS {{ key }}
{%- endmacro %}
{#- The rows of the call's body (sums per `place`) with the place's codes (its origin,
    partner and category) and the partner's region. #}
{%- macro with_codes() -%}
SELECT b.*, r.region
FROM (
    SELECT *,
           CASE WHEN (place >> {{ origin_shift }}) = {{ national_slot }} THEN '{{ national }}'
                ELSE exdep_cell_part(place, 'origin') END AS province,
           exdep_cell_part(place, 'partner') AS partner,
           exdep_cell_part(place, 'category') AS category
    FROM ({{ caller() }})
) b
JOIN regions r ON b.partner = r.partner
{%- endmacro %}
{%- macro origin(key) -%}
({{ key }} >> {{ key_origin_shift }})
{%- endmacro %}
{%- macro without_origin(key) -%}
({{ key }} & {{ key_without_origin_mask }})
{%- endmacro %}
WITH regions AS (
    SELECT DISTINCT partner, region FROM {{ cells_table }} WHERE year IN ({{ needed_years }})
),
by_place AS (
    SELECT growth['year'] AS year, growth['place'] AS place,
{%- for column in ["delta", "new", "lost", "continuing"] %}
    {%- for currency in ["usd", "cny"] %}
           growth['{{ column }}_{{ currency }}'] AS {{ column }}_{{ currency }},
    {%- endfor %}
{%- endfor %}
           growth['exports_usd'] AS exports_usd, growth['served_usd'] AS served_usd,
           growth['new_products'] AS new_products, growth['lost_products'] AS lost_products,
           growth['continuing_products'] AS continuing_products
    FROM (
        SELECT unnest(growth) AS growth
        FROM (
            SELECT exdep_product_growth(
                       year, key, exports_usd, exports_cny,
                       {{ origin("key") }} IN ({{ province_slots }})
                   ) AS growth
            FROM products
            WHERE year IN ({{ needed_years }})
            GROUP BY {{ without_origin("key") }} >> {{ product_bits }}
        )
    )
    WHERE growth['year'] IN ({{ years_with_previous }})
),
by_partner AS (
    {% call with_codes() %}SELECT * FROM by_place{% endcall %}
),
{#- Every sum of a row's destinations, in one aggregation: a common table expression read
    twice is computed twice, and `by_place` is most of the plan's work. For each origin:
    the growth and its parts; the exports and the served national exports of the rows
    where the origin serves products (`own`, `served`); its positive exports (`exported`),
    which for the nation are the reference total. The reference stays an exact decimal
    until it is divided: the nation without a province that alone serves a pair is then
    exactly 0 there, not a rounding residue. #}
totals AS (
    SELECT year, province, {{ rolled_up("category") }}, {{ rolled_up("region") }},
           {{ rolled_up("partner") }},
{%- for column in ["delta", "new", "lost", "continuing"] %}
    {%- for currency in ["usd", "cny"] %}
           CAST(sum({{ column }}_{{ currency }}) AS DOUBLE) AS {{ column }}_{{ currency }},
    {%- endfor %}
{%- endfor %}
           sum(new_products) AS new_products, sum(lost_products) AS lost_products,
           sum(continuing_products) AS continuing_products,
           sum(CASE WHEN served_usd IS NOT NULL THEN exports_usd END) AS own,
{%- if product_reference == "rest-of-nation" %}
           sum(served_usd - exports_usd) AS served,
{%- else %}
           sum(served_usd) AS served,
{%- endif %}
           sum(CASE WHEN exports_usd > 0 THEN exports_usd END) AS exported
    FROM by_partner
    GROUP BY {{ destination_sets("year, province") }}
),
hk AS (
    SELECT *,
{%- if product_reference == "rest-of-nation" %}
           CAST(national - own AS DOUBLE) AS reference_total
{%- else %}
           CAST(national AS DOUBLE) AS reference_total
{%- endif %}
    FROM (
        SELECT *,
               max(CASE WHEN province = '{{ national }}' THEN exported END)
                   OVER (PARTITION BY year, category, region, partner) AS national
        FROM totals
    )
)
SELECT year, province, category, region, partner,
       delta_usd, new_usd, lost_usd, continuing_usd,
       delta_cny, new_cny, lost_cny, continuing_cny,
       new_products, lost_products, continuing_products,
       CASE WHEN reference_total > 0.0 AND served IS NOT NULL
           THEN CAST(served AS DOUBLE) / reference_total END AS hk_extensive,
       CASE WHEN served > 0 AND reference_total IS NOT NULL
           THEN CAST(own AS DOUBLE) / CAST(served AS DOUBLE) END AS hk_intensive
FROM hk
ORDER BY year, province, category, region, partner
