//! `exdep report`: the study's figures, drawn from the published tables, as one
//! self-contained HTML file.
//!
//! Each figure is a Vega-Lite specification with its data inline; the page carries the
//! Vega and Vega-Lite runtimes (`assets/`), so it opens without any network access. Vega-Lite
//! was chosen over drawing SVG in Rust because the figures need faceting, stacking, heat-map
//! colour scales, legends and a year or index selector, which it declares in a few lines each
//! and renders the same in every browser; the numbers are the tables' own, queried with
//! DataFusion from the published tables in either format.
//!
//! ```no_run
//! # async fn demo() -> exdep_report::Result<()> {
//! let config = exdep_core::Config::load(std::path::Path::new("configs/demo.toml"))?;
//! let ctx = exdep_engine::new_session();
//! exdep_engine::prepare_session(&ctx, &config)?;
//! let report = exdep_report::build(&ctx, &config, &exdep_report::ReportOptions::default()).await?;
//! std::fs::write("report.html", report.html).unwrap();
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod error;
mod figures;
mod page;
mod scope;

use scope::{Scope, query};

use std::collections::BTreeMap;

use exdep_core::Config;
use exdep_core::schema::NATIONAL;
use exdep_engine::datafusion::prelude::SessionContext;
use exdep_store::layout::Output;

pub use error::{Error, Result};

/// What to draw.
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    /// The province shown beside the nation (a code such as `44`); default: the province
    /// with the largest exports in the last year.
    pub province: Option<String>,
    /// The years shown, first and last; default: every published year.
    pub years: Option<(i32, i32)>,
}

/// A written report.
#[derive(Debug, Clone)]
pub struct Report {
    /// The page.
    pub html: String,
    /// The years it shows.
    pub years: Vec<i32>,
    /// The province it shows beside the nation.
    pub province: String,
    /// The figures it draws.
    pub figures: usize,
}

/// The table of the product margins' figure, drawn when the output has it.
const PRODUCT_MARGINS: &str = "product_margins";

/// The tables the report reads.
const TABLES: [&str; 6] = [
    "indices",
    "region_shares",
    "top_links",
    "destinations",
    "margins",
    "lq",
];

/// Builds the report of the tables published under `config`'s output.
pub async fn build(
    ctx: &SessionContext,
    config: &Config,
    options: &ReportOptions,
) -> Result<Report> {
    let published = exdep_export::published_tables(ctx, &Output::of(config)).await?;
    for name in TABLES {
        let table = published
            .iter()
            .find(|table| table.name == name)
            .ok_or_else(|| Error::MissingTable {
                table: name.to_string(),
                output: config.output.to_string(),
            })?;
        exdep_export::register_published(ctx, &Output::of(config), table, name).await?;
    }
    // Published with `product-margins = true` only: its figure is drawn when it is there.
    let products = published.iter().find(|table| table.name == PRODUCT_MARGINS);
    if let Some(table) = products {
        exdep_export::register_published(ctx, &Output::of(config), table, PRODUCT_MARGINS).await?;
    }
    let codes = exdep_classify::CodeTables::load(ctx, &config.tables, &config.years).await?;
    let tiles =
        exdep_classify::load_province_tiles(ctx, &config.tables.province_tiles, &codes.provinces)
            .await?;
    let names: BTreeMap<String, String> = codes
        .provinces
        .iter()
        .map(|(code, province)| (code.clone(), province.name.clone()))
        .collect();

    let all_years: Vec<i32> = query(ctx, "SELECT DISTINCT year FROM indices ORDER BY year")
        .await?
        .iter()
        .filter_map(|row| row["year"].as_i64())
        .map(|year| year as i32)
        .collect();
    let years: Vec<i32> = all_years
        .iter()
        .copied()
        .filter(|y| {
            options
                .years
                .is_none_or(|(from, to)| (from..=to).contains(y))
        })
        .collect();
    let (Some(&first), Some(&last)) = (years.first(), years.last()) else {
        return Err(Error::NoYears {
            asked: options
                .years
                .map(|(from, to)| format!("{from}-{to}"))
                .unwrap_or_else(|| "any".into()),
            published: all_years,
        });
    };
    let provinces = exdep_core::sql::text_list(names.keys().map(String::as_str));
    let province = match &options.province {
        Some(code) if names.contains_key(code) => code.clone(),
        Some(code) => {
            return Err(Error::UnknownProvince { code: code.clone() });
        }
        None => query(
            ctx,
            &format!(
                "SELECT province FROM indices WHERE year = {last} AND category = 'all' \
                 AND province IN ({provinces}) ORDER BY exports_usd DESC, province LIMIT 1"
            ),
        )
        .await?
        .first()
        .and_then(|row| row["province"].as_str().map(str::to_string))
        .ok_or(Error::NoProvinces)?,
    };
    let scope = Scope {
        first,
        last,
        years: years.clone(),
        province: province.clone(),
        provinces,
        names,
        tiles,
        base_year: config.indices.base_year,
        threshold_100m_cny: config.indices.destination_threshold_cny / 1e8,
    };
    let figures = figures::all(ctx, &scope, products.is_some()).await?;
    let summary = query(
        ctx,
        &format!(
            "SELECT year, category, hhi, entropy FROM indices WHERE province = '{NATIONAL}' \
             AND year BETWEEN {first} AND {last} ORDER BY year, category"
        ),
    )
    .await?;
    let manifest = exdep_store::read_manifest(ctx, &Output::of(config)).await?;
    let html = page::render(&scope, &figures, &summary, manifest.as_ref())?;
    Ok(Report {
        html,
        years,
        province,
        figures: figures.len(),
    })
}
