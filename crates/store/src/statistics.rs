//! Column statistics of a written Parquet file, read off the footer the writer returns:
//! what a Delta table's `add` actions carry so that other engines skip files by value, not
//! only by partition.

use std::collections::{BTreeMap, BTreeSet};

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray};
use arrow::compute::{filter, max, max_string, min, min_string};
use arrow::datatypes::{DataType, Float64Type, Int32Type, Int64Type, Schema};
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use parquet::file::metadata::ParquetMetaData;
use serde_json::{Value, json};

use crate::error::Result;

/// Text bounds longer than this are left out, as Delta writers truncate theirs: a code or
/// a name prunes files, a raw record line does not.
const MAX_TEXT_BOUND: usize = 32;

/// One file's bounds and null counts by column. Every column has a null count; a column
/// has bounds when its type has an order readers prune by (integers, finite doubles, short
/// text), every row group of the file recorded them and it holds no NaN.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileStatistics {
    /// The smallest value of each column that has bounds.
    pub min_values: BTreeMap<String, Value>,
    /// The largest value of each column that has bounds.
    pub max_values: BTreeMap<String, Value>,
    /// Nulls in each column.
    pub null_count: BTreeMap<String, u64>,
}

impl FileStatistics {
    /// The statistics of a file of `schema`'s columns from its footer, `metadata`; the
    /// columns `with_nan` hold a NaN. Parquet's bounds leave NaN out, but readers do not
    /// agree on where it sorts (Spark puts it above every number, so `x > 1` keeps it): a
    /// column with a NaN has no bounds, so that no reader skips the file on it.
    pub fn of(
        metadata: &ParquetMetaData,
        schema: &Schema,
        with_nan: &BTreeSet<String>,
    ) -> Result<Self> {
        let mut statistics = Self::default();
        let parquet_schema = metadata.file_metadata().schema_descr();
        let row_groups = metadata.row_groups();
        for field in schema.fields() {
            let name = field.name();
            let converter = StatisticsConverter::try_new(name, schema, parquet_schema)?;
            let nulls = converter.row_group_null_counts(row_groups)?;
            (statistics.null_count).insert(name.clone(), nulls.iter().flatten().sum());
            // A row group of nulls only has no bounds, and needs none.
            let with_values: BooleanArray = (nulls.iter().zip(row_groups))
                .map(|(nulls, group)| Some(nulls != Some(group.num_rows() as u64)))
                .collect();
            let of_values = |bounds: ArrayRef| filter(&bounds, &with_values);
            let lowest = bound(
                &of_values(converter.row_group_mins(row_groups)?)?,
                Bound::Lowest,
            );
            let highest = bound(
                &of_values(converter.row_group_maxes(row_groups)?)?,
                Bound::Highest,
            );
            if let (Some(lowest), Some(highest), false) = (lowest, highest, with_nan.contains(name))
            {
                statistics.min_values.insert(name.clone(), lowest);
                statistics.max_values.insert(name.clone(), highest);
            }
        }
        Ok(statistics)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Bound {
    Lowest,
    Highest,
}

/// The lowest or highest of the row groups' bounds `values` as a JSON value; `None` when a
/// row group with values has none, when no row group has values, or when the column's type
/// has no bound readers use.
fn bound(values: &ArrayRef, which: Bound) -> Option<Value> {
    if values.null_count() > 0 {
        return None;
    }
    let lowest = which == Bound::Lowest;
    match values.data_type() {
        DataType::Int32 => {
            let values = values.as_primitive::<Int32Type>();
            (if lowest { min(values) } else { max(values) }).map(|v| json!(v))
        }
        DataType::Int64 => {
            let values = values.as_primitive::<Int64Type>();
            (if lowest { min(values) } else { max(values) }).map(|v| json!(v))
        }
        DataType::Float64 => {
            let values = values.as_primitive::<Float64Type>();
            (if lowest { min(values) } else { max(values) })
                .filter(|v| v.is_finite())
                .map(|v| json!(v))
        }
        DataType::Utf8 => {
            let values = values.as_string::<i32>();
            (if lowest {
                min_string(values)
            } else {
                max_string(values)
            })
            .filter(|v| v.len() <= MAX_TEXT_BOUND)
            .map(|v| json!(v))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
    use arrow::datatypes::Field;
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;

    use super::*;

    /// The statistics of `batch` written as a file with row groups of `rows_per_group`.
    fn statistics_of(batch: &RecordBatch, rows_per_group: usize) -> FileStatistics {
        statistics_with_nan(batch, rows_per_group, &BTreeSet::new())
    }

    fn statistics_with_nan(
        batch: &RecordBatch,
        rows_per_group: usize,
        with_nan: &BTreeSet<String>,
    ) -> FileStatistics {
        let properties = WriterProperties::builder()
            .set_max_row_group_row_count(Some(rows_per_group))
            .build();
        let mut writer =
            ArrowWriter::try_new(Vec::new(), batch.schema(), Some(properties)).unwrap();
        writer.write(batch).unwrap();
        let metadata = writer.close().unwrap();
        FileStatistics::of(&metadata, &batch.schema(), with_nan).unwrap()
    }

    #[test]
    fn a_column_with_a_nan_has_no_bounds() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("hhi", DataType::Float64, false),
            Field::new("theil", DataType::Float64, false),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Float64Array::from(vec![0.5, f64::NAN, 0.25])),
                Arc::new(Float64Array::from(vec![0.5, 0.75, 0.25])),
            ],
        )
        .unwrap();
        let statistics = statistics_with_nan(&batch, 2, &BTreeSet::from(["hhi".to_string()]));
        assert!(!statistics.min_values.contains_key("hhi"));
        assert!(!statistics.max_values.contains_key("hhi"));
        assert_eq!(statistics.max_values["theil"], json!(0.75));
        assert_eq!(statistics.null_count["hhi"], 0);
    }

    #[test]
    fn bounds_span_every_row_group_and_nulls_are_counted() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("partner", DataType::Utf8, true),
            Field::new("destinations", DataType::Int64, false),
            Field::new("hhi", DataType::Float64, true),
            Field::new("raw", DataType::Utf8, false),
            Field::new("flag", DataType::Boolean, false),
        ]));
        let long = "x".repeat(MAX_TEXT_BOUND + 1);
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec![Some("VNM"), None, Some("DEU")])),
                Arc::new(Int64Array::from(vec![7, 3, 12])),
                Arc::new(Float64Array::from(vec![Some(0.5), Some(0.25), None])),
                Arc::new(StringArray::from(vec!["a", "b", long.as_str()])),
                Arc::new(BooleanArray::from(vec![true, false, true])),
            ],
        )
        .unwrap();
        let statistics = statistics_of(&batch, 2);
        assert_eq!(
            statistics.min_values,
            BTreeMap::from([
                ("partner".to_string(), json!("DEU")),
                ("destinations".to_string(), json!(3)),
                ("hhi".to_string(), json!(0.25)),
            ])
        );
        assert_eq!(statistics.max_values["partner"], json!("VNM"));
        assert_eq!(statistics.max_values["destinations"], json!(12));
        assert_eq!(statistics.max_values["hhi"], json!(0.5));
        assert!(
            !statistics.max_values.contains_key("raw"),
            "too long a bound"
        );
        assert_eq!(
            statistics.null_count,
            BTreeMap::from([
                ("partner".to_string(), 1),
                ("destinations".to_string(), 0),
                ("hhi".to_string(), 1),
                ("raw".to_string(), 0),
                ("flag".to_string(), 0),
            ])
        );
    }

    #[test]
    fn a_file_of_no_rows_has_null_counts_only() {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "hhi",
            DataType::Float64,
            true,
        )]));
        let empty = RecordBatch::new_empty(schema);
        let statistics = statistics_of(&empty, 2);
        assert!(statistics.min_values.is_empty() && statistics.max_values.is_empty());
        assert_eq!(statistics.null_count["hhi"], 0);
    }
}
