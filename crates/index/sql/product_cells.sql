{#- The product cells the product plans read, for the needed years: the product cube's
    cells (the exact sums of the files' partial product cubes, by product key; see
    `exdep_engine::cell_sql`) whose exports are positive, plus the national aggregate (the
    sum over provinces only, its origin a slot no code has: `national_slot`). Both are
    summed from the partial cubes, which hold no negative value, so a national cell is the
    sum of its provinces' positive cells. Exact decimals, so the product plans' sums stay
    exact. Computed once per run and read by every product plan: each reads its cells
    several times, and the engine would derive them from the product cube again at every
    reference. Each year is summed on its own, by the key alone: the engine groups each
    year's keys in a table of their own, not every year's (year, key) pairs in one (on 20M
    records: aggregation CPU about the same, the phase 0.1 s faster and the run's peak RSS
    30-60 MiB lower, in A/B runs against the single plan). -#}
{%- for year in each_needed_year %}
    {%- if not loop.first %}
UNION ALL
    {%- endif %}
SELECT CAST({{ year }} AS INT) AS year, key,
       sum(exports_usd) AS exports_usd, sum(exports_cny) AS exports_cny
FROM products WHERE year = {{ year }}
GROUP BY key
HAVING sum(exports_usd) > 0
UNION ALL
SELECT CAST({{ year }} AS INT) AS year,
       (key & {{ key_without_origin_mask }}) + {{ national_key_origin }} AS key,
       sum(exports_usd) AS exports_usd, sum(exports_cny) AS exports_cny
FROM products
WHERE year = {{ year }} AND (key >> {{ key_origin_shift }}) IN ({{ province_slots }})
GROUP BY key & {{ key_without_origin_mask }}
HAVING sum(exports_usd) > 0
{%- endfor %}
