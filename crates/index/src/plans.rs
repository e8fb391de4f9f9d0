//! The SQL of every index table.
//!
//! Each plan is one statement: a chain of common table expressions over the run's cells
//! (computed once from the `cube` table, see [`cells_sql`]),
//! ending in the table's rows, sorted so that the files a run writes are reproducible.

use std::collections::BTreeSet;
use std::sync::{Arc, LazyLock};

use exdep_core::DestinationLevel;
use exdep_core::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use exdep_core::schema::{ALL_CATEGORIES, NATIONAL, YEAR};
use exdep_core::sql::{exact_share_sum, exact_sum, exact_sum_over, text_list, year_list};

/// The `region` of margin rows that sum over all regions.
const ALL_REGIONS: &str = "all";

/// The partitioning of per-origin tables.
const BY_YEAR_AND_PROVINCE: &[&str] = &[YEAR, "province"];
/// The partitioning of national tables.
const BY_YEAR: &[&str] = &[YEAR];

/// Relative slack within which a value counts as equal to the cross-province mean when
/// placing provinces in quadrants, so that engines that sum in a different order agree.
const QUADRANT_TOLERANCE: f64 = 1e-12;

/// The indices `indices_change` follows, in the order its rows are written.
const CHANGE_INDICES: [&str; 14] = [
    "exports_usd",
    "destinations",
    "hhi",
    "hhi_norm",
    "entropy",
    "evenness",
    "equivalent_markets",
    "equivalent_markets_entropy",
    "theil",
    "theil_between",
    "theil_within",
    "specialization",
    "hk_extensive",
    "hk_intensive",
];

/// An output table: its name, partitioning, file schema and plan.
#[derive(Debug, Clone)]
pub struct IndexTable {
    /// Folder name under the output root.
    pub name: &'static str,
    /// Hive partition columns, outermost first.
    pub partition_by: &'static [&'static str],
    /// Whether a year's rows read the previous year's cube (growth margins, changes).
    pub reads_previous_year: bool,
    /// Whether a year's rows read the base year's cube.
    pub reads_base_year: bool,
    /// Schema of the Parquet files (without the partition columns).
    pub file_schema: SchemaRef,
    /// The plan, as SQL over the cells `compute_cells` registers.
    pub sql: String,
}

impl IndexTable {
    /// The years among `years` whose rows of this table read a cube year in `changed`:
    /// the rows to recompute when those cube years were rebuilt.
    pub fn years_reading(
        &self,
        changed: &BTreeSet<i32>,
        years: &BTreeSet<i32>,
        base_year: i32,
    ) -> BTreeSet<i32> {
        let base_changed = self.reads_base_year && changed.contains(&base_year);
        years
            .iter()
            .filter(|&&year| {
                base_changed
                    || changed.contains(&year)
                    || (self.reads_previous_year && changed.contains(&(year - 1)))
            })
            .copied()
            .collect()
    }
}

/// What the plans of a run depend on.
#[derive(Debug, Clone)]
pub struct PlanSettings {
    /// The years whose outputs are written.
    pub years: BTreeSet<i32>,
    /// The years the warehouse's cube holds (for previous-year and base-year comparisons).
    pub cube_years: BTreeSet<i32>,
    /// The year statuses and changes are measured against.
    pub base_year: i32,
    /// Countries or regions as destination units for concentration and growth margins.
    pub destination_level: DestinationLevel,
    /// Strongest links kept per category.
    pub top_n: u32,
    /// National exports (CNY) that put a destination on the list.
    pub destination_threshold_cny: f64,
    /// The province codes: origins that add up to the national aggregate. Every other
    /// origin in the cube is a reporter country, its own row and never part of `CN`.
    pub provinces: BTreeSet<String>,
}

impl PlanSettings {
    /// Years whose previous year is in the cube: the years with growth margins.
    fn years_with_previous(&self) -> BTreeSet<i32> {
        self.years
            .iter()
            .copied()
            .filter(|y| self.cube_years.contains(&(y - 1)))
            .collect()
    }

    /// A test that the origin in `column` is a province (not a reporter country, not `CN`).
    fn is_province(&self, column: &str) -> String {
        let provinces = text_list(self.provinces.iter().map(String::as_str));
        format!("{column} IN ({provinces})")
    }

    /// The years the plans read from the cube: the run's, their previous years and the base.
    fn needed_years(&self) -> BTreeSet<i32> {
        let mut needed = self.years.clone();
        needed.extend(self.years.iter().map(|y| y - 1));
        needed.insert(self.base_year);
        needed.retain(|y| self.cube_years.contains(y) || self.years.contains(y));
        needed
    }
}

fn schema(fields: &[(&str, DataType, bool)]) -> SchemaRef {
    Arc::new(Schema::new(
        fields
            .iter()
            .map(|(name, data_type, nullable)| Field::new(*name, data_type.clone(), *nullable))
            .collect::<Vec<_>>(),
    ))
}

/// The table the plans read their cells from (see [`cells_sql`]).
pub(crate) const CELLS_TABLE: &str = "index_cells";

/// The cells every plan reads, for the needed years of `settings`: the cube's cells (the
/// exact sums of the files' partial cubes) plus the national aggregate (origin `CN`, the sum
/// over provinces only: a reporter country in the same cube is its own origin) and the `all`
/// category (the sum of the four categories), at partner level. Computed once per run and
/// read by every plan as [`CELLS_TABLE`]: each plan reads its cells several times, and the
/// engine would derive them from the cube again at every reference.
pub(crate) fn cells_sql(settings: &PlanSettings) -> String {
    let years = year_list(&settings.needed_years());
    let (usd, cny) = (exact_sum("exports_usd"), exact_sum("exports_cny"));
    format!(
        "WITH cube_years AS (
            SELECT year, province, partner, region, category,
                   CAST(sum(exports_usd) AS DOUBLE) AS exports_usd,
                   CAST(sum(exports_cny) AS DOUBLE) AS exports_cny
            FROM cube WHERE year IN ({years})
            GROUP BY year, province, partner, region, category
            HAVING sum(exports_usd) > 0
        ),
        by_category AS (
            SELECT year, province, partner, region, category, exports_usd, exports_cny
            FROM cube_years
            UNION ALL
            SELECT year, '{NATIONAL}' AS province, partner, region, category,
                   {usd} AS exports_usd, {cny} AS exports_cny
            FROM cube_years WHERE {provinces}
            GROUP BY year, partner, region, category
        )
        SELECT year, province, partner, region, category, exports_usd, exports_cny
        FROM by_category
        UNION ALL
        SELECT year, province, partner, region, '{ALL_CATEGORIES}' AS category,
               {usd} AS exports_usd, {cny} AS exports_cny
        FROM by_category GROUP BY year, province, partner, region",
        provinces = settings.is_province("province"),
    )
}

/// The schema of [`CELLS_TABLE`]'s files (partitioned by `year`).
pub(crate) static CELLS_FILE: LazyLock<SchemaRef> = LazyLock::new(|| {
    let text = |name| (name, DataType::Utf8, false);
    let money = |name| (name, DataType::Float64, false);
    schema(&[
        text("province"),
        text("partner"),
        text("region"),
        text("category"),
        money("exports_usd"),
        money("exports_cny"),
    ])
});

/// `cells`: the needed years' cells (see [`cells_sql`]).
/// `units`: the destination units concentration and margins count, partners or regions.
fn cells_cte(settings: &PlanSettings) -> String {
    let years = year_list(&settings.needed_years());
    let usd = exact_sum("exports_usd");
    let units = match settings.destination_level {
        DestinationLevel::Country => {
            "SELECT year, province, category, partner AS unit, region, exports_usd FROM cells"
                .to_string()
        }
        DestinationLevel::Region => format!(
            "SELECT year, province, category, region AS unit, region, {usd} AS exports_usd
             FROM cells GROUP BY year, province, category, region"
        ),
    };
    format!(
        "cells AS (
            SELECT year, province, partner, region, category, exports_usd, exports_cny
            FROM {CELLS_TABLE} WHERE year IN ({years})
        ),
        units AS ({units})"
    )
}

/// `index_values`: every column of `indices` for every needed year. Expects `cells_cte`.
///
/// Per origin, year and category, over destination units i with shares s_i of X and N units;
/// for region g, S_g is its share and N_g its number of units:
/// - hhi = sum s_i^2; entropy = -sum s_i ln s_i (written 0 - sum so one unit gives +0);
/// - theil = ln N - entropy = theil_between + theil_within, with
///   theil_between = sum_g S_g ln(S_g N / N_g) = sum_i s_i ln(S_g(i) N / N_g(i)) and
///   theil_within = sum_g S_g (ln N_g - V_g) = sum_i s_i (ln N_g(i) + ln(s_i / S_g(i))).
/// - specialization = sum over all partners r of |e_rm/e_m - e_r/e_N|. Partners without
///   exports of m add e_r/e_N each, so the sum is 1 + sum over partners with exports of m of
///   (|e_rm/e_m - e_r/e_N| - e_r/e_N): no cross join of partners and categories is needed.
/// - hk_extensive = national exports to the partners served / national exports;
///   hk_intensive = X / national exports to the partners served; null for a reporter
///   country, which is not part of the national aggregate.
/// - quadrant: high or low G and V against the means over the origins of the same kind,
///   provinces against provinces and reporter countries against reporter countries.
fn index_values_cte(settings: &PlanSettings) -> String {
    let tolerance = QUADRANT_TOLERANCE;
    let usd = exact_sum("exports_usd");
    let usd_over = |window: &str| exact_sum_over("exports_usd", window);
    let (origin_total, region_total) = (usd_over("origin"), usd_over("origin_region"));
    // Specialization reads the four categories' cells only, with windows and no join: a
    // partner's weight e_r / e_N comes from its cells' sum over the categories. (A join of
    // shares and weights followed by the aggregate made DataFusion 55 assume a sort order the
    // join does not keep, and split groups.)
    let partner_total = usd_over("(PARTITION BY year, province, partner)");
    let origin_all_total = usd_over("(PARTITION BY year, province)");
    let category_total = usd_over("(PARTITION BY year, province, category)");
    let hhi = exact_share_sum("s * s");
    let s_ln_s = exact_share_sum("s * ln(s)");
    let between = exact_share_sum("s * ln(s_g * n / n_g)");
    let within = exact_share_sum("s * (ln(n_g) + ln(s / s_g))");
    let specialization = exact_share_sum("abs(share - weight) - weight");
    let (served_usd, national_usd) = (exact_sum("c.exports_usd"), exact_sum("n.exports_usd"));
    let (sum_hhi, sum_entropy) = (exact_share_sum("hhi"), exact_share_sum("entropy"));
    let province_origin = settings.is_province("province");
    let k_province_origin = settings.is_province("k.province");
    let in_national = format!("(k.province = '{NATIONAL}' OR {k_province_origin})");
    format!(
        "unit_shares AS (
            SELECT year, province, category, region, exports_usd,
                   exports_usd / {origin_total} AS s,
                   {region_total} / {origin_total} AS s_g,
                   CAST(count(*) OVER origin_region AS DOUBLE) AS n_g,
                   CAST(count(*) OVER origin AS DOUBLE) AS n
            FROM units
            WINDOW origin AS (PARTITION BY year, province, category),
                   origin_region AS (PARTITION BY year, province, category, region)
        ),
        concentration AS (
            SELECT year, province, category,
                   {usd} AS exports_usd,
                   count(*) AS destinations,
                   {hhi} AS hhi,
                   0.0 - {s_ln_s} AS entropy,
                   {between} AS theil_between,
                   {within} AS theil_within
            FROM unit_shares GROUP BY year, province, category
        ),
        category_terms AS (
            SELECT year, province, category,
                   exports_usd / {category_total} AS share,
                   {partner_total} / {origin_all_total} AS weight
            FROM cells WHERE category <> '{ALL_CATEGORIES}'
        ),
        specialization AS (
            SELECT year, province, category, 1.0 + {specialization} AS specialization
            FROM category_terms GROUP BY year, province, category
        ),
        national AS (
            SELECT year, category, partner, exports_usd FROM cells WHERE province = '{NATIONAL}'
        ),
        served AS (
            SELECT c.year, c.province, c.category,
                   {served_usd} AS exports_usd,
                   {national_usd} AS national_to_served
            FROM cells c
            JOIN national n
              ON c.year = n.year AND c.category = n.category AND c.partner = n.partner
            GROUP BY c.year, c.province, c.category
        ),
        national_totals AS (
            SELECT year, category, {usd} AS national_total
            FROM national GROUP BY year, category
        ),
        means AS (
            SELECT year, category, province_origin,
                   {sum_hhi} / count(*) AS mean_hhi,
                   {sum_entropy} / count(*) AS mean_entropy
            FROM (SELECT *, {province_origin} AS province_origin FROM concentration)
            WHERE province <> '{NATIONAL}' GROUP BY year, category, province_origin
        ),
        index_values AS (
            SELECT k.year, k.province, k.category, k.exports_usd, k.destinations,
                   k.hhi,
                   CASE WHEN k.destinations = 1 THEN 0.0
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
                       WHEN k.province = '{NATIONAL}' THEN NULL
                       WHEN k.hhi >= m.mean_hhi - {tolerance:e} * abs(m.mean_hhi)
                            AND k.entropy >= m.mean_entropy - {tolerance:e} * abs(m.mean_entropy)
                           THEN 'I'
                       WHEN k.entropy >= m.mean_entropy - {tolerance:e} * abs(m.mean_entropy)
                           THEN 'II'
                       WHEN k.hhi >= m.mean_hhi - {tolerance:e} * abs(m.mean_hhi) THEN 'IV'
                       ELSE 'III'
                   END AS quadrant,
                   CASE WHEN {in_national}
                        THEN s.national_to_served / t.national_total END AS hk_extensive,
                   CASE WHEN {in_national}
                        THEN s.exports_usd / s.national_to_served END AS hk_intensive
            FROM concentration k
            LEFT JOIN means m
              ON k.year = m.year AND k.category = m.category
             AND m.province_origin = ({k_province_origin})
            LEFT JOIN served s
              ON k.year = s.year AND k.province = s.province AND k.category = s.category
            LEFT JOIN national_totals t ON k.year = t.year AND k.category = t.category
            LEFT JOIN specialization p
              ON k.year = p.year AND k.province = p.province AND k.category = p.category
        )"
    )
}

fn indices(settings: &PlanSettings) -> IndexTable {
    IndexTable {
        name: "indices",
        partition_by: BY_YEAR_AND_PROVINCE,
        reads_previous_year: false,
        reads_base_year: false,
        file_schema: schema(&[
            ("category", DataType::Utf8, false),
            ("exports_usd", DataType::Float64, false),
            ("destinations", DataType::Int64, false),
            ("hhi", DataType::Float64, false),
            ("hhi_norm", DataType::Float64, false),
            ("entropy", DataType::Float64, false),
            ("evenness", DataType::Float64, true),
            ("equivalent_markets", DataType::Float64, false),
            ("equivalent_markets_entropy", DataType::Float64, false),
            ("theil", DataType::Float64, false),
            ("theil_between", DataType::Float64, false),
            ("theil_within", DataType::Float64, false),
            ("specialization", DataType::Float64, true),
            ("quadrant", DataType::Utf8, true),
            ("hk_extensive", DataType::Float64, true),
            ("hk_intensive", DataType::Float64, true),
        ]),
        sql: format!(
            "WITH {cells}, {values}
            SELECT * FROM index_values WHERE year IN ({years})
            ORDER BY year, province, category",
            cells = cells_cte(settings),
            values = index_values_cte(settings),
            years = year_list(&settings.years),
        ),
    }
}

fn lq(settings: &PlanSettings) -> IndexTable {
    IndexTable {
        name: "lq",
        partition_by: BY_YEAR_AND_PROVINCE,
        reads_previous_year: false,
        reads_base_year: false,
        file_schema: schema(&[
            ("partner", DataType::Utf8, false),
            ("category", DataType::Utf8, false),
            ("exports_usd", DataType::Float64, false),
            ("lq", DataType::Float64, true),
        ]),
        // lq = (e_rm / e_r) / (e_m / e_N); null, never inf or NaN, when a denominator is 0.
        sql: format!(
            "WITH {cells},
            totals AS (
                SELECT year, province, partner, category, exports_usd,
                       {e_r} AS e_r,
                       {e_m} AS e_m,
                       {e_n} AS e_n
                FROM cells WHERE category <> '{ALL_CATEGORIES}' AND year IN ({years})
            )
            SELECT year, province, partner, category, exports_usd,
                   (exports_usd / nullif(e_r, 0.0)) / nullif(e_m / nullif(e_n, 0.0), 0.0) AS lq
            FROM totals
            ORDER BY year, province, partner, category",
            cells = cells_cte(settings),
            years = year_list(&settings.years),
            e_r = exact_sum_over("exports_usd", "(PARTITION BY year, province, partner)"),
            e_m = exact_sum_over("exports_usd", "(PARTITION BY year, province, category)"),
            e_n = exact_sum_over("exports_usd", "(PARTITION BY year, province)"),
        ),
    }
}

fn region_shares(settings: &PlanSettings) -> IndexTable {
    IndexTable {
        name: "region_shares",
        partition_by: BY_YEAR_AND_PROVINCE,
        reads_previous_year: false,
        reads_base_year: false,
        file_schema: schema(&[
            ("region", DataType::Utf8, false),
            ("category", DataType::Utf8, false),
            ("exports_usd", DataType::Float64, false),
            ("share", DataType::Float64, false),
        ]),
        sql: format!(
            "WITH {cells},
            regions AS (
                SELECT year, province, region, category, {usd} AS exports_usd
                FROM cells WHERE year IN ({years})
                GROUP BY year, province, region, category
            )
            SELECT year, province, region, category, exports_usd,
                   exports_usd / {total} AS share
            FROM regions
            ORDER BY year, province, category, region",
            cells = cells_cte(settings),
            years = year_list(&settings.years),
            usd = exact_sum("exports_usd"),
            total = exact_sum_over("exports_usd", "(PARTITION BY year, province, category)"),
        ),
    }
}

/// Growth from t-1 to t over destination units: delta = new - lost + intensive.
fn margins(settings: &PlanSettings) -> IndexTable {
    let cells = cells_cte(settings);
    let years = year_list(&settings.years_with_previous());
    let terms = format!(
        "{x1} - {x0} AS delta, {new} AS new, {lost} AS lost, {intensive} AS intensive",
        x1 = exact_sum("x1"),
        x0 = exact_sum("x0"),
        new = exact_sum("CASE WHEN x0 = 0.0 THEN x1 ELSE 0.0 END"),
        lost = exact_sum("CASE WHEN x1 = 0.0 THEN x0 ELSE 0.0 END"),
        intensive = exact_sum("CASE WHEN x0 > 0.0 AND x1 > 0.0 THEN x1 - x0 ELSE 0.0 END"),
    );
    IndexTable {
        name: "margins",
        partition_by: BY_YEAR_AND_PROVINCE,
        reads_previous_year: true,
        reads_base_year: false,
        file_schema: schema(&[
            ("category", DataType::Utf8, false),
            ("region", DataType::Utf8, false),
            ("delta", DataType::Float64, false),
            ("new", DataType::Float64, false),
            ("lost", DataType::Float64, false),
            ("intensive", DataType::Float64, false),
        ]),
        sql: format!(
            "WITH {cells},
            current_units AS (SELECT * FROM units WHERE year IN ({years})),
            previous_units AS (SELECT * FROM units WHERE year + 1 IN ({years})),
            pairs AS (
                SELECT coalesce(c.year, p.year + 1) AS year,
                       coalesce(c.province, p.province) AS province,
                       coalesce(c.category, p.category) AS category,
                       coalesce(c.region, p.region) AS region,
                       coalesce(c.exports_usd, 0.0) AS x1,
                       coalesce(p.exports_usd, 0.0) AS x0
                FROM current_units c
                FULL OUTER JOIN previous_units p
                  ON c.year = p.year + 1 AND c.province = p.province
                 AND c.category = p.category AND c.unit = p.unit
            )
            SELECT year, province, category, region, {terms}
            FROM pairs GROUP BY year, province, category, region
            UNION ALL
            SELECT year, province, category, '{ALL_REGIONS}' AS region, {terms}
            FROM pairs GROUP BY year, province, category
            ORDER BY year, province, category, region"
        ),
    }
}

/// The strongest province-partner flows per category, ties broken by province then partner.
/// Reporter countries and the national aggregate are not links of a province.
fn top_links(settings: &PlanSettings) -> IndexTable {
    IndexTable {
        name: "top_links",
        partition_by: BY_YEAR,
        reads_previous_year: false,
        reads_base_year: false,
        file_schema: schema(&[
            ("category", DataType::Utf8, false),
            ("rank", DataType::Int64, false),
            ("province", DataType::Utf8, false),
            ("partner", DataType::Utf8, false),
            ("exports_usd", DataType::Float64, false),
            ("share_of_category", DataType::Float64, false),
        ]),
        sql: format!(
            "WITH {cells},
            ranked AS (
                SELECT c.year, c.category, c.province, c.partner, c.exports_usd,
                       c.exports_usd / t.national_total AS share_of_category,
                       row_number() OVER (
                           PARTITION BY c.year, c.category
                           ORDER BY c.exports_usd DESC, c.province, c.partner
                       ) AS rank
                FROM cells c
                JOIN (
                    SELECT year, category, {usd} AS national_total
                    FROM cells WHERE province = '{NATIONAL}' GROUP BY year, category
                ) t ON c.year = t.year AND c.category = t.category
                WHERE {provinces} AND c.year IN ({years})
            )
            SELECT year, category, CAST(rank AS BIGINT) AS rank, province, partner,
                   exports_usd, share_of_category
            FROM ranked WHERE rank <= {top_n}
            ORDER BY year, category, rank",
            cells = cells_cte(settings),
            years = year_list(&settings.years),
            top_n = settings.top_n,
            usd = exact_sum("exports_usd"),
            provinces = settings.is_province("c.province"),
        ),
    }
}

/// National exports per destination, the threshold, and the status against the base year.
/// A partner above the threshold in the base year that has no exports at all in a year
/// (sanctions, a war, a closed border) is listed too, with zero exports, as `left`: in
/// every year that has national exports, so a year without any data gets no rows.
fn destinations(settings: &PlanSettings) -> IndexTable {
    IndexTable {
        name: "destinations",
        partition_by: BY_YEAR,
        reads_previous_year: false,
        reads_base_year: true,
        file_schema: schema(&[
            ("partner", DataType::Utf8, false),
            ("region", DataType::Utf8, false),
            ("exports_usd", DataType::Float64, false),
            ("exports_cny", DataType::Float64, false),
            ("above_threshold", DataType::Boolean, false),
            ("status", DataType::Utf8, false),
        ]),
        sql: format!(
            "WITH {cells},
            national AS (
                SELECT year, partner, region, exports_usd, exports_cny,
                       exports_cny >= {threshold:?} AS above_threshold
                FROM cells
                WHERE province = '{NATIONAL}' AND category = '{ALL_CATEGORIES}'
            ),
            base AS (
                SELECT partner, region, above_threshold FROM national WHERE year = {base}
            ),
            run_years AS (SELECT DISTINCT year FROM national WHERE year IN ({years})),
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
                FROM national WHERE year IN ({years})
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
            ORDER BY l.year, l.partner",
            cells = cells_cte(settings),
            threshold = settings.destination_threshold_cny,
            base = settings.base_year,
            years = year_list(&settings.years),
        ),
    }
}

/// Every index in long form with its change against the previous and the base year, and
/// the compound annual growth of exports since the base year. One pass over the index
/// values: the long form is a cross join with the list of index names, and the comparisons
/// are window functions over each origin's series of an index.
fn indices_change(settings: &PlanSettings) -> IndexTable {
    let names = CHANGE_INDICES
        .iter()
        .enumerate()
        .map(|(position, index)| format!("('{index}', {position})"))
        .collect::<Vec<_>>()
        .join(", ");
    let pick = CHANGE_INDICES
        .iter()
        .map(|index| format!(" WHEN '{index}' THEN CAST(v.{index} AS DOUBLE)"))
        .collect::<String>();
    IndexTable {
        name: "indices_change",
        partition_by: BY_YEAR_AND_PROVINCE,
        reads_previous_year: true,
        reads_base_year: true,
        file_schema: schema(&[
            ("category", DataType::Utf8, false),
            ("index", DataType::Utf8, false),
            ("value", DataType::Float64, true),
            ("change_from_previous", DataType::Float64, true),
            ("change_from_base", DataType::Float64, true),
            ("exports_cagr", DataType::Float64, true),
        ]),
        sql: format!(
            "WITH {cells}, {values},
            long AS (
                SELECT v.year, v.province, v.category, i.index, i.index_order,
                       CASE i.index{pick} END AS value,
                       v.exports_usd
                FROM index_values v
                CROSS JOIN (VALUES {names}) AS i(index, index_order)
            ),
            series AS (
                SELECT year, province, category, index, index_order, value, exports_usd,
                       lag(year) OVER ordered AS previous_year,
                       lag(value) OVER ordered AS previous_value,
                       max(CASE WHEN year = {base} THEN value END) OVER whole AS base_value,
                       max(CASE WHEN year = {base} THEN exports_usd END) OVER whole
                           AS base_exports
                FROM long
                WINDOW ordered AS (PARTITION BY province, category, index ORDER BY year),
                       whole AS (PARTITION BY province, category, index)
            )
            SELECT year, province, category, index, value,
                   CASE WHEN previous_year = year - 1 THEN value - previous_value END
                       AS change_from_previous,
                   value - base_value AS change_from_base,
                   CASE WHEN year > {base} AND base_exports > 0.0
                        THEN power(exports_usd / base_exports,
                                   1.0 / CAST(year - {base} AS DOUBLE)) - 1.0
                   END AS exports_cagr
            FROM series
            WHERE year IN ({years})
            ORDER BY year, province, category, index_order",
            cells = cells_cte(settings),
            values = index_values_cte(settings),
            base = settings.base_year,
            years = year_list(&settings.years),
        ),
    }
}

/// The tables of a run, in the order they are written.
pub fn tables(settings: &PlanSettings) -> Vec<IndexTable> {
    vec![
        indices(settings),
        lq(settings),
        region_shares(settings),
        margins(settings),
        top_links(settings),
        destinations(settings),
        indices_change(settings),
    ]
}
