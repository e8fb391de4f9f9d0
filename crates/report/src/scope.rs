//! What the figures show ([`Scope`]), and the rows they are drawn from.

use std::collections::BTreeMap;

use exdep_core::arrow::array::RecordBatch;
use exdep_core::schema::NATIONAL;
use exdep_engine::datafusion::prelude::SessionContext;
use serde_json::Value;

use crate::error::{Error, Result};

/// What the figures show: the years, the province beside the nation, and the code tables'
/// names and tile positions.
pub(crate) struct Scope {
    pub first: i32,
    pub last: i32,
    pub years: Vec<i32>,
    pub province: String,
    /// The province codes as an SQL list.
    pub provinces: String,
    pub names: BTreeMap<String, String>,
    pub tiles: BTreeMap<String, (u32, u32)>,
    pub base_year: i32,
    pub threshold_100m_cny: f64,
}

impl Scope {
    /// `year BETWEEN first AND last`.
    pub fn years_sql(&self) -> String {
        format!("year BETWEEN {} AND {}", self.first, self.last)
    }

    /// The name of an origin: a province's name, or the nation's.
    pub fn origin_name(&self, code: &str) -> String {
        if code == NATIONAL {
            "China (national)".to_string()
        } else {
            self.names
                .get(code)
                .map_or_else(|| code.to_string(), |name| format!("{name} ({code})"))
        }
    }
}

/// Runs `sql` and returns its rows as JSON objects (numbers, text, booleans, nulls).
pub(crate) async fn query(ctx: &SessionContext, sql: &str) -> Result<Vec<Value>> {
    let batches = ctx.sql(sql).await?.collect().await?;
    rows_as_json(&batches)
}

fn rows_as_json(batches: &[RecordBatch]) -> Result<Vec<Value>> {
    let mut writer = arrow_json::ArrayWriter::new(Vec::new());
    let batches: Vec<&RecordBatch> = batches.iter().collect();
    writer
        .write_batches(&batches)
        .and_then(|()| writer.finish())
        .map_err(Error::RowsToJson)?;
    let bytes = writer.into_inner();
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    Ok(serde_json::from_slice(&bytes)?)
}
