//! The index tables: their declarations (`sql/tables.toml`) and their plans
//! (`sql/<table>.sql`), read from the crate's `sql` folder at build time.
//!
//! Each plan is one SQL statement, written as a [MiniJinja](https://docs.rs/minijinja)
//! template: a chain of common table expressions over the run's cells (computed once from
//! the `cube` table by `cells.sql`) ending in the table's rows, sorted so that the files a
//! run writes are reproducible. Templates see these variables, each already SQL text:
//!
//! | variable | value |
//! |---|---|
//! | `years` | the years whose rows the statement computes, as the contents of `IN (...)` |
//! | `needed_years` | those years, their previous years and the base year that the cube holds |
//! | `years_with_previous` | the `years` whose previous year is in the cube |
//! | `each_needed_year`, `each_year_with_previous` | those years one by one, to loop over |
//! | `provinces` | the province codes (origins adding up to the nation), for `IN (...)` |
//! | `base_year`, `top_n`, `threshold_cny` | the `[indices]` settings |
//! | `destination_level` | `country` or `region` |
//! | `national`, `all_categories` | the national origin's code and the category of all |
//! | `cells_table` | the table `cells.sql`'s rows are registered as |
//! | `province_slots` | the provinces' slots in cells and product keys, for `IN (...)` |
//! | `origin_shift`, `product_bits` | the lowest bit of a cell's origin; a product's bits |
//! | `key_origin_shift`, `key_without_origin_mask` | a product key's origin: its lowest bit, and the mask of the bits below it |
//! | `national_slot` | the national aggregate's origin slot |
//!
//! (see [`exdep_engine::cell_sql`])
//! and the functions `exact_sum(expr)`, `exact_share_sum(expr)` and
//! `exact_sum_over(expr, window)` of [`exdep_core::sql`]. An undefined variable is an error.

use std::collections::BTreeSet;
use std::sync::{Arc, LazyLock};

use exdep_core::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use exdep_core::schema::{ALL_CATEGORIES, NATIONAL};
use exdep_core::sql::{exact_share_sum, exact_sum, exact_sum_over, text_list, year_list};
use exdep_core::{DestinationLevel, IndexSettings, ProductReference, QuadrantCut};
use exdep_engine::{CELL_ORIGIN_SHIFT, PRODUCT_BITS, cell_sql};
use minijinja::{Environment, UndefinedBehavior, context};
use serde::Deserialize;

use crate::error::{Error, Result};

/// The declarations, as written in `sql/tables.toml`.
const DECLARATIONS: &str = include_str!("../sql/tables.toml");

/// Every template, by its name in `{% include %}` and in [`IndexTable::template`].
const TEMPLATES: &[(&str, &str)] = &[
    ("cells.sql", include_str!("../sql/cells.sql")),
    (
        "include/units.sql",
        include_str!("../sql/include/units.sql"),
    ),
    (
        "include/index_values.sql",
        include_str!("../sql/include/index_values.sql"),
    ),
    ("indices.sql", include_str!("../sql/indices.sql")),
    ("lq.sql", include_str!("../sql/lq.sql")),
    (
        "region_shares.sql",
        include_str!("../sql/region_shares.sql"),
    ),
    ("margins.sql", include_str!("../sql/margins.sql")),
    ("top_links.sql", include_str!("../sql/top_links.sql")),
    ("destinations.sql", include_str!("../sql/destinations.sql")),
    (
        "indices_change.sql",
        include_str!("../sql/indices_change.sql"),
    ),
    (
        "product_margins.sql",
        include_str!("../sql/product_margins.sql"),
    ),
];

/// An output table: its name, partitioning, file schema and plan.
#[derive(Debug, Clone)]
pub struct IndexTable {
    /// Folder name under the output root.
    pub name: String,
    /// Hive partition columns, outermost first.
    pub partition_by: Vec<String>,
    /// Whether a year's rows read the previous year's cube (growth margins, changes).
    pub reads_previous_year: bool,
    /// Whether a year's rows read the base year's cube.
    pub reads_base_year: bool,
    /// Whether it reads the product cube, kept with `product-margins = true` only.
    pub reads_products: bool,
    /// Whether it holds the quadrants, which read the base year when they are cut at its
    /// means (`quadrant-cut = "base-year-mean"`).
    pub holds_quadrants: bool,
    /// Schema of the Parquet files (without the partition columns).
    pub file_schema: SchemaRef,
}

impl IndexTable {
    /// The years among `years` whose rows of this table read a cube year in `changed`:
    /// the rows to recompute when those cube years were rebuilt.
    pub fn years_reading(
        &self,
        changed: &BTreeSet<i32>,
        years: &BTreeSet<i32>,
        base_year: i32,
        quadrant_cut: QuadrantCut,
    ) -> BTreeSet<i32> {
        let reads_base_year = self.reads_base_year
            || (self.holds_quadrants && quadrant_cut == QuadrantCut::BaseYearMean);
        let base_changed = reads_base_year && changed.contains(&base_year);
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

    /// The plan of this table's rows for `years`, as SQL over the cells
    /// [`compute_cells`](crate::compute_cells) registers.
    pub fn sql(&self, settings: &PlanSettings, years: &BTreeSet<i32>) -> Result<String> {
        render(&self.template(), settings, years)
    }

    /// The name of the table's template.
    fn template(&self) -> String {
        format!("{}.sql", self.name)
    }
}

/// What the plans of a run depend on, besides the years they compute.
#[derive(Debug, Clone)]
pub struct PlanSettings {
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
    /// The reference of the product-level Hummels-Klenow margins.
    pub product_reference: ProductReference,
    /// Where `quadrant` cuts G and V.
    pub quadrant_cut: QuadrantCut,
}

impl PlanSettings {
    /// Years among `years` whose previous year is in the cube: the years with growth
    /// margins.
    fn years_with_previous(&self, years: &BTreeSet<i32>) -> BTreeSet<i32> {
        years
            .iter()
            .copied()
            .filter(|y| self.cube_years.contains(&(y - 1)))
            .collect()
    }

    /// The years plans for `years` read from the cube: those, their previous years and the
    /// base year.
    fn needed_years(&self, years: &BTreeSet<i32>) -> BTreeSet<i32> {
        let mut needed = years.clone();
        needed.extend(years.iter().map(|y| y - 1));
        needed.insert(self.base_year);
        needed.retain(|y| self.cube_years.contains(y) || years.contains(y));
        needed
    }
}

/// Every index table, in the order a run writes them.
pub fn tables() -> &'static [IndexTable] {
    &DECLARED.tables
}

/// The index tables a run with `settings` publishes: those reading the product cube only
/// with `product-margins = true`.
pub fn published_tables(settings: &IndexSettings) -> Vec<&'static IndexTable> {
    (tables().iter())
        .filter(|table| settings.product_margins || !table.reads_products)
        .collect()
}

/// The declaration of the cells every plan reads (see [`cells_sql`]).
pub(crate) fn cells() -> &'static IndexTable {
    &DECLARED.cells
}

/// The cells' plan for the tables' `years` (`sql/cells.sql`).
pub(crate) fn cells_sql(settings: &PlanSettings, years: &BTreeSet<i32>) -> Result<String> {
    render("cells.sql", settings, years)
}

struct Declared {
    cells: IndexTable,
    tables: Vec<IndexTable>,
}

/// The declarations, read once. They and the templates are part of the binary and a unit
/// test reads them all, so a mistake in them cannot reach a run.
static DECLARED: LazyLock<Declared> = LazyLock::new(|| {
    declarations(DECLARATIONS).unwrap_or_else(|e| panic!("crates/index/sql/tables.toml: {e}"))
});

static TEMPLATE_ENVIRONMENT: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut environment = Environment::new();
    environment.set_undefined_behavior(UndefinedBehavior::Strict);
    for (name, source) in TEMPLATES {
        environment
            .add_template(name, source)
            .unwrap_or_else(|e| panic!("crates/index/sql/{name}: {e:#}"));
    }
    environment.add_function("exact_sum", |expr: &str| exact_sum(expr));
    environment.add_function("exact_share_sum", |expr: &str| exact_share_sum(expr));
    environment.add_function("exact_sum_over", |expr: &str, window: &str| {
        exact_sum_over(expr, window)
    });
    environment
});

/// `years` one by one, for a template to loop over; `[-1]`, a year no cube holds, for none
/// (as [`year_list`] renders an empty list), so the loop still yields a plan of no rows.
fn each_year(years: &BTreeSet<i32>) -> Vec<i32> {
    if years.is_empty() {
        vec![-1]
    } else {
        years.iter().copied().collect()
    }
}

/// Renders template `name` for `years`.
fn render(name: &str, settings: &PlanSettings, years: &BTreeSet<i32>) -> Result<String> {
    let destination_level = match settings.destination_level {
        DestinationLevel::Country => "country",
        DestinationLevel::Region => "region",
    };
    let variables = context! {
        years => year_list(years),
        needed_years => year_list(&settings.needed_years(years)),
        years_with_previous => year_list(&settings.years_with_previous(years)),
        each_year_with_previous => each_year(&settings.years_with_previous(years)),
        each_needed_year => each_year(&settings.needed_years(years)),
        provinces => text_list(settings.provinces.iter().map(String::as_str)),
        base_year => settings.base_year,
        top_n => settings.top_n,
        threshold_cny => format!("{:?}", settings.destination_threshold_cny),
        destination_level => destination_level,
        product_reference => match settings.product_reference {
            ProductReference::Nation => "nation",
            ProductReference::RestOfNation => "rest-of-nation",
        },
        quadrant_cut => match settings.quadrant_cut {
            QuadrantCut::YearMean => "year-mean",
            QuadrantCut::BaseYearMean => "base-year-mean",
            QuadrantCut::YearMedian => "year-median",
        },
        national => NATIONAL,
        all_categories => ALL_CATEGORIES,
        province_slots => cell_sql::slot_list(&settings.provinces),
        national_slot => cell_sql::NATIONAL_SLOT,
        origin_shift => CELL_ORIGIN_SHIFT,
        product_bits => PRODUCT_BITS,
        key_origin_shift => cell_sql::KEY_ORIGIN_SHIFT,
        key_without_origin_mask => cell_sql::KEY_WITHOUT_ORIGIN_MASK,
        cells_table => cells().name.as_str(),
    };
    TEMPLATE_ENVIRONMENT
        .get_template(name)
        .and_then(|template| template.render(variables))
        .map_err(|source| Error::Template {
            template: name.to_string(),
            source,
        })
}

/// A table as `sql/tables.toml` declares it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Declaration {
    name: String,
    partition_by: Vec<String>,
    #[serde(default)]
    reads_previous_year: bool,
    #[serde(default)]
    reads_base_year: bool,
    #[serde(default)]
    reads_products: bool,
    #[serde(default)]
    holds_quadrants: bool,
    columns: Vec<(String, String, bool)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeclarationFile {
    cells: Declaration,
    table: Vec<Declaration>,
}

fn declarations(text: &str) -> std::result::Result<Declared, String> {
    let file: DeclarationFile = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut names = BTreeSet::new();
    let mut table = |declaration: Declaration| {
        if !names.insert(declaration.name.clone()) {
            return Err(format!("table `{}` is declared twice", declaration.name));
        }
        index_table(declaration)
    };
    Ok(Declared {
        cells: table(file.cells)?,
        tables: file
            .table
            .into_iter()
            .map(table)
            .collect::<std::result::Result<_, _>>()?,
    })
}

fn index_table(declaration: Declaration) -> std::result::Result<IndexTable, String> {
    let fields = declaration
        .columns
        .iter()
        .map(|(column, type_name, nullable)| {
            let data_type = match type_name.as_str() {
                "text" => DataType::Utf8,
                "double" => DataType::Float64,
                "bigint" => DataType::Int64,
                "boolean" => DataType::Boolean,
                "decimal" => DataType::Decimal128(38, 10),
                other => {
                    return Err(format!(
                        "table `{}`, column `{column}`: type `{other}` is none of text, \
                         double, bigint, boolean",
                        declaration.name
                    ));
                }
            };
            Ok(Field::new(column, data_type, *nullable))
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(IndexTable {
        name: declaration.name,
        partition_by: declaration.partition_by,
        reads_previous_year: declaration.reads_previous_year,
        reads_base_year: declaration.reads_base_year,
        reads_products: declaration.reads_products,
        holds_quadrants: declaration.holds_quadrants,
        file_schema: Arc::new(Schema::new(fields)),
    })
}

#[cfg(test)]
mod tests {
    use exdep_core::schema::{CUBE_FILE, PRODUCTS_FILE, YEAR, partition_column_type};
    use exdep_engine::datafusion::datasource::MemTable;
    use exdep_engine::datafusion::prelude::SessionContext;

    use super::*;

    fn settings(destination_level: DestinationLevel) -> PlanSettings {
        PlanSettings {
            cube_years: [2019, 2020, 2021].into(),
            base_year: 2019,
            destination_level,
            top_n: 10,
            destination_threshold_cny: 1e11,
            provinces: ["11", "44"].map(String::from).into(),
            // Each level with one of the references, so both branches are planned.
            product_reference: match destination_level {
                DestinationLevel::Country => ProductReference::Nation,
                DestinationLevel::Region => ProductReference::RestOfNation,
            },
            quadrant_cut: match destination_level {
                DestinationLevel::Country => QuadrantCut::BaseYearMean,
                DestinationLevel::Region => QuadrantCut::YearMedian,
            },
        }
    }

    /// The schema a table's rows have: its partition columns (typed as the cube's) and its
    /// file's columns.
    fn row_schema(table: &IndexTable) -> Vec<(String, DataType)> {
        let partitions = table
            .partition_by
            .iter()
            .map(|column| (column.clone(), partition_column_type(column)));
        let files = table
            .file_schema
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone()));
        partitions.chain(files).collect()
    }

    /// A session with an empty `cube` and empty cells registered, as a run has them.
    fn session() -> SessionContext {
        let ctx = exdep_engine::new_session();
        let empty = |schema: SchemaRef| Arc::new(MemTable::try_new(schema, vec![vec![]]).unwrap());
        let with_year = |file: &SchemaRef| {
            let mut fields: Vec<Field> = file.fields().iter().map(|f| f.as_ref().clone()).collect();
            fields.push(Field::new(YEAR, partition_column_type(YEAR), false));
            Arc::new(Schema::new(fields))
        };
        ctx.register_table("cube", empty(with_year(&CUBE_FILE)))
            .unwrap();
        ctx.register_table("products", empty(with_year(&PRODUCTS_FILE)))
            .unwrap();
        let table = empty(with_year(&cells().file_schema));
        ctx.register_table(cells().name.as_str(), table).unwrap();
        ctx
    }

    /// The columns `table`'s SQL yields, planned at both destination levels, against its
    /// declared columns: names, order and types.
    async fn assert_plan_matches_declaration(
        table: &IndexTable,
        sql_of: impl Fn(&PlanSettings) -> String,
    ) {
        let ctx = session();
        for level in [DestinationLevel::Country, DestinationLevel::Region] {
            let sql = sql_of(&settings(level));
            let frame = ctx.sql(&sql).await.unwrap_or_else(|e| {
                panic!("`{}` ({level:?}) does not plan: {e}\n{sql}", table.name)
            });
            let planned: Vec<(String, DataType)> = frame
                .schema()
                .fields()
                .iter()
                .map(|f| (f.name().clone(), f.data_type().clone()))
                .collect();
            assert_eq!(
                planned,
                row_schema(table),
                "`{}` ({level:?}): the plan's columns differ from tables.toml",
                table.name
            );
        }
    }

    fn table(name: &str) -> &'static IndexTable {
        tables()
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no table `{name}` in tables.toml"))
    }

    macro_rules! plan_yields_declared_schema {
        ($($name:ident),* $(,)?) => {$(
            #[tokio::test]
            async fn $name() {
                let table = table(stringify!($name));
                let years = [2020, 2021].into();
                assert_plan_matches_declaration(table, |s| table.sql(s, &years).unwrap()).await;
            }
        )*};
    }

    plan_yields_declared_schema!(
        indices,
        lq,
        region_shares,
        margins,
        top_links,
        destinations,
        indices_change,
        product_margins,
    );

    #[tokio::test]
    async fn cells_plan_yields_declared_schema() {
        let years = [2020, 2021].into();
        assert_plan_matches_declaration(cells(), |s| cells_sql(s, &years).unwrap()).await;
    }

    #[test]
    fn every_declared_table_has_a_template_and_every_template_is_used() {
        let mut unused: BTreeSet<&str> = TEMPLATES.iter().map(|(name, _)| *name).collect();
        unused.retain(|name| !name.starts_with("include/") && name != &"cells.sql");
        for table in tables() {
            assert!(
                unused.remove(table.template().as_str()),
                "table `{}` has no template {}",
                table.name,
                table.template()
            );
        }
        assert!(unused.is_empty(), "templates of no table: {unused:?}");
        assert_eq!(
            tables().iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            [
                "indices",
                "lq",
                "region_shares",
                "margins",
                "top_links",
                "destinations",
                "indices_change",
                "product_margins"
            ]
        );
    }

    #[test]
    fn a_bad_declaration_is_refused_naming_table_and_column() {
        let text = DECLARATIONS.replace(r#"["lq", "double", true]"#, r#"["lq", "float", true]"#);
        let error = declarations(&text)
            .err()
            .expect("an unknown type is refused");
        assert!(
            error.contains("table `lq`, column `lq`: type `float`"),
            "{error}"
        );
        let twice =
            format!("{DECLARATIONS}\n[[table]]\nname = \"lq\"\npartition_by = []\ncolumns = []\n");
        let error = declarations(&twice)
            .err()
            .expect("a second `lq` is refused");
        assert!(error.contains("table `lq` is declared twice"), "{error}");
    }

    #[test]
    fn an_undefined_template_variable_is_an_error() {
        let error = TEMPLATE_ENVIRONMENT
            .render_str("SELECT {{ yeers }}", context! {})
            .unwrap_err();
        assert_eq!(error.kind(), minijinja::ErrorKind::UndefinedError);
    }
}
