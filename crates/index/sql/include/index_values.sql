{#- `index_values`: every column of `indices` for every needed year; follows units.sql.

    Per origin, year and category, over destination units i with shares s_i of X and N
    units; for region g, S_g is its share and N_g its number of units:
    - hhi = sum s_i^2; entropy = -sum s_i ln s_i (written 0 - sum so one unit gives +0);
    - hhi_norm = (hhi - 1/N) / (1 - 1/N), and evenness = entropy / ln N, are null with one
      unit: 0/0, and 0 would read as perfectly even where exports are wholly concentrated;
    - theil = ln N - entropy = theil_between + theil_within, with
      theil_between = sum_g S_g ln(S_g N / N_g) = sum_i s_i ln(S_g(i) N / N_g(i)) and
      theil_within = sum_g S_g (ln N_g - V_g) = sum_i s_i (ln N_g(i) + ln(s_i / S_g(i))).
    - specialization = sum over all partners r of |e_rm/e_m - e_r/e_N|. Partners without
      exports of m add e_r/e_N each, so the sum is 1 + sum over partners with exports of m
      of (|e_rm/e_m - e_r/e_N| - e_r/e_N): no cross join of partners and categories is
      needed. It reads the four categories' cells only, with windows and no join: a
      partner's weight e_r / e_N comes from its cells' sum over the categories. (A join of
      shares and weights followed by the aggregate made DataFusion 55 assume a sort order
      the join does not keep, and split groups.)
    - hk_extensive = national exports to the partners served / national exports;
      hk_intensive = X / national exports to the partners served; null for a reporter
      country, which is not part of the national aggregate.
    - quadrant: high or low G and V against the cut of `quadrant-cut` over the origins of
      the same kind, provinces against provinces and reporter countries against reporter
      countries: the year's means (`year-mean`), the base year's (`base-year-mean`), or the
      year's medians (`year-median`; `mean_*` then hold the medians). A
      value within a relative 1e-12 of the mean counts as equal to it, so that engines that
      sum in a different order agree. -#}
unit_shares AS (
    SELECT year, province, category, region, exports_usd, exports_cny,
           exports_usd / {{ exact_sum_over("exports_usd", "origin") }} AS s,
           {{ exact_sum_over("exports_usd", "origin_region") }}
               / {{ exact_sum_over("exports_usd", "origin") }} AS s_g,
           CAST(count(*) OVER origin_region AS DOUBLE) AS n_g,
           CAST(count(*) OVER origin AS DOUBLE) AS n
    FROM units
    WINDOW origin AS (PARTITION BY year, province, category),
           origin_region AS (PARTITION BY year, province, category, region)
),
concentration AS (
    SELECT year, province, category,
           {{ exact_sum("exports_usd") }} AS exports_usd,
           {{ exact_sum("exports_cny") }} AS exports_cny,
           count(*) AS destinations,
           {{ exact_share_sum("s * s") }} AS hhi,
           0.0 - {{ exact_share_sum("s * ln(s)") }} AS entropy,
           {{ exact_share_sum("s * ln(s_g * n / n_g)") }} AS theil_between,
           {{ exact_share_sum("s * (ln(n_g) + ln(s / s_g))") }} AS theil_within
    FROM unit_shares GROUP BY year, province, category
),
category_terms AS (
    SELECT year, province, category,
           exports_usd
               / {{ exact_sum_over("exports_usd", "(PARTITION BY year, province, category)") }}
               AS share,
           {{ exact_sum_over("exports_usd", "(PARTITION BY year, province, partner)") }}
               / {{ exact_sum_over("exports_usd", "(PARTITION BY year, province)") }}
               AS weight
    FROM cells WHERE category <> '{{ all_categories }}'
),
specialization AS (
    SELECT year, province, category,
           1.0 + {{ exact_share_sum("abs(share - weight) - weight") }} AS specialization
    FROM category_terms GROUP BY year, province, category
),
national AS (
    SELECT year, category, partner, exports_usd FROM cells WHERE province = '{{ national }}'
),
served AS (
    SELECT c.year, c.province, c.category,
           {{ exact_sum("c.exports_usd") }} AS exports_usd,
           {{ exact_sum("n.exports_usd") }} AS national_to_served
    FROM cells c
    JOIN national n
      ON c.year = n.year AND c.category = n.category AND c.partner = n.partner
    GROUP BY c.year, c.province, c.category
),
national_totals AS (
    SELECT year, category, {{ exact_sum("exports_usd") }} AS national_total
    FROM national GROUP BY year, category
),
means AS (
    SELECT year, category, province_origin,
{%- if quadrant_cut == "year-median" %}
           median(hhi) AS mean_hhi, median(entropy) AS mean_entropy
{%- else %}
           {{ exact_share_sum("hhi") }} / count(*) AS mean_hhi,
           {{ exact_share_sum("entropy") }} / count(*) AS mean_entropy
{%- endif %}
    FROM (SELECT *, province IN ({{ provinces }}) AS province_origin FROM concentration)
    WHERE province <> '{{ national }}'
{%- if quadrant_cut == "base-year-mean" %} AND year = {{ base_year }}{% endif %}
    GROUP BY year, category, province_origin
),
index_values AS (
    SELECT k.year, k.province, k.category, k.exports_usd, k.exports_cny, k.destinations,
           k.hhi,
           CASE WHEN k.destinations = 1 THEN NULL
                ELSE (k.hhi - 1.0 / k.destinations) / (1.0 - 1.0 / k.destinations)
           END AS hhi_norm,
           k.entropy,
           CASE WHEN k.destinations = 1 THEN NULL
                ELSE k.entropy / ln(CAST(k.destinations AS DOUBLE))
           END AS evenness,
           1.0 / k.hhi AS equivalent_markets,
           exp(k.entropy) AS equivalent_markets_entropy,
           ln(CAST(k.destinations AS DOUBLE)) - k.entropy AS theil,
           k.theil_between,
           k.theil_within,
           p.specialization,
           CASE
               WHEN k.province = '{{ national }}' THEN NULL
               WHEN k.hhi >= m.mean_hhi - 1e-12 * abs(m.mean_hhi)
                    AND k.entropy >= m.mean_entropy - 1e-12 * abs(m.mean_entropy)
                   THEN 'I'
               WHEN k.entropy >= m.mean_entropy - 1e-12 * abs(m.mean_entropy)
                   THEN 'II'
               WHEN k.hhi >= m.mean_hhi - 1e-12 * abs(m.mean_hhi) THEN 'IV'
               ELSE 'III'
           END AS quadrant,
           CASE WHEN k.province = '{{ national }}' OR k.province IN ({{ provinces }})
                THEN s.national_to_served / t.national_total END AS hk_extensive,
           CASE WHEN k.province = '{{ national }}' OR k.province IN ({{ provinces }})
                THEN s.exports_usd / s.national_to_served END AS hk_intensive
    FROM concentration k
    LEFT JOIN means m
      ON {% if quadrant_cut == "base-year-mean" %}m.year = {{ base_year }}
{%- else %}k.year = m.year{% endif %} AND k.category = m.category
     AND m.province_origin = (k.province IN ({{ provinces }}))
    LEFT JOIN served s
      ON k.year = s.year AND k.province = s.province AND k.category = s.category
    LEFT JOIN national_totals t ON k.year = t.year AND k.category = t.category
    LEFT JOIN specialization p
      ON k.year = p.year AND k.province = p.province AND k.category = p.category
)
