//! Catalog DDL for the published tables: the statements that declare each table, with its
//! columns' and partitions' types, in Spark, Trino, Hive or DuckDB. A reader left to guess
//! partition types reads `province` as an integer when the folders it lists hold numeric
//! codes only; a catalog table over a folder sees no partitions until they are recovered.

use std::fmt::Write;

use exdep_core::TableFormat;
use exdep_core::arrow::datatypes::DataType;
use exdep_core::schema::partition_column_type;
use exdep_store::layout::Output;

use crate::error::{Error, Result};
use crate::table::TableLayout;

/// The engine whose dialect [`catalog_ddl`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatalogEngine {
    /// Spark SQL (3.x, 4.x): `CREATE TABLE ... USING parquet|delta`.
    Spark,
    /// Trino's Hive connector (Parquet) or Delta Lake connector (Delta).
    Trino,
    /// HiveQL: `CREATE EXTERNAL TABLE ... STORED AS PARQUET`.
    Hive,
    /// DuckDB: a view over `read_parquet` or `delta_scan`.
    Duckdb,
}

impl CatalogEngine {
    /// `name` as the engine quotes an identifier: the tables' names are exdep's, but a
    /// schema's is the user's.
    fn quoted(self, name: &str) -> String {
        match self {
            Self::Spark | Self::Hive => format!("`{}`", name.replace('`', "``")),
            Self::Trino | Self::Duckdb => format!("\"{}\"", name.replace('"', "\"\"")),
        }
    }

    /// `text` as a string literal of the engine: Spark and Hive escape with a backslash,
    /// Trino and DuckDB double the quote.
    fn literal(self, text: &str) -> String {
        match self {
            Self::Spark | Self::Hive => {
                format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
            }
            Self::Trino | Self::Duckdb => format!("'{}'", text.replace('\'', "''")),
        }
    }

    /// The engine's name for a column of `data_type`.
    fn type_name(self, data_type: &DataType) -> Result<String> {
        let text = matches!(self, Self::Spark | Self::Hive);
        Ok(match data_type {
            DataType::Utf8 | DataType::LargeUtf8 if text => "STRING".into(),
            DataType::Utf8 | DataType::LargeUtf8 => "VARCHAR".into(),
            DataType::Int32 if self == Self::Spark || self == Self::Hive => "INT".into(),
            DataType::Int32 => "INTEGER".into(),
            DataType::Int64 => "BIGINT".into(),
            DataType::Float64 => "DOUBLE".into(),
            DataType::Boolean => "BOOLEAN".into(),
            DataType::Date32 => "DATE".into(),
            DataType::Decimal128(precision, scale) => format!("DECIMAL({precision},{scale})"),
            other => {
                return Err(Error::Unsupported(format!(
                    "a column of type {other} has no declared type in exdep's DDL"
                )));
            }
        })
    }
}

/// Where a table's statements put it: the schema (database) name, and for Trino the
/// catalog.
#[derive(Debug, Clone)]
pub struct CatalogNames {
    /// The schema (Spark, Hive and DuckDB call it a database or schema) holding the tables.
    pub schema: String,
    /// Trino's catalog; by default `hive` for Parquet and `delta` for Delta tables.
    pub trino_catalog: Option<String>,
    /// The storage account of an output in Azure (`az://CONTAINER/...`), which Spark, Hive
    /// and Trino name in the table's `abfss://CONTAINER@ACCOUNT.dfs.core.windows.net/...`.
    pub azure_account: Option<String>,
}

/// The statements declaring every table of `layouts`, published under `output` in
/// `format`, in `engine`'s dialect, preceded by comments saying what to run them with.
pub fn catalog_ddl(
    engine: CatalogEngine,
    layouts: &[TableLayout],
    output: &Output,
    format: TableFormat,
    names: &CatalogNames,
) -> Result<String> {
    let schema = engine.quoted(&names.schema);
    let mut sql = String::new();
    let trino_catalog = names.trino_catalog.clone().unwrap_or_else(|| match format {
        TableFormat::Parquet => "hive".into(),
        TableFormat::Delta => "delta".into(),
    });
    match engine {
        CatalogEngine::Trino => writeln!(
            sql,
            "CREATE SCHEMA IF NOT EXISTS {}.{schema};",
            engine.quoted(&trino_catalog)
        ),
        CatalogEngine::Hive if format == TableFormat::Delta => {
            return Err(Error::Unsupported(
                "Hive has no maintained Delta Lake reader (delta-io's Hive connector stops at \
                 Hive 3 and Delta 3): declare the tables in Spark or Trino, or publish \
                 `table-format = \"parquet\"` for Hive"
                    .into(),
            ));
        }
        _ => writeln!(sql, "CREATE SCHEMA IF NOT EXISTS {schema};"),
    }
    .expect("writing to a string");
    for layout in layouts {
        let path = table_location(engine, output, &layout.name, names)?;
        let location = engine.literal(&path);
        let table = format!("{schema}.{}", engine.quoted(&layout.name));
        let statement = match (engine, format) {
            (CatalogEngine::Duckdb, _) => duckdb_view(&table, layout, &path, format)?,
            (CatalogEngine::Spark, TableFormat::Parquet) => format!(
                "CREATE TABLE IF NOT EXISTS {table} (\n{}\n)\nUSING parquet\nPARTITIONED BY ({})\n\
                 LOCATION {location};\nMSCK REPAIR TABLE {table};",
                column_list(engine, layout, true)?,
                partition_names(engine, layout),
            ),
            (CatalogEngine::Spark, TableFormat::Delta) => {
                format!("CREATE TABLE IF NOT EXISTS {table}\nUSING delta\nLOCATION {location};")
            }
            (CatalogEngine::Hive, _) => format!(
                "CREATE EXTERNAL TABLE IF NOT EXISTS {table} (\n{}\n)\nPARTITIONED BY ({})\n\
                 STORED AS PARQUET\nLOCATION {location};\nMSCK REPAIR TABLE {table};",
                column_list(engine, layout, false)?,
                partition_columns(engine, layout)?,
            ),
            (CatalogEngine::Trino, TableFormat::Parquet) => format!(
                "CREATE TABLE IF NOT EXISTS {catalog}.{table} (\n{}\n)\nWITH (\n  format = \
                 'PARQUET',\n  partitioned_by = ARRAY[{}],\n  external_location = \
                 {location}\n);\nCALL {catalog}.system.sync_partition_metadata(schema_name \
                 => {}, table_name => {}, mode => 'FULL');",
                column_list(engine, layout, true)?,
                (layout.partition_by.iter())
                    .map(|c| format!("'{c}'"))
                    .collect::<Vec<_>>()
                    .join(", "),
                engine.literal(&names.schema),
                engine.literal(&layout.name),
                catalog = engine.quoted(&trino_catalog),
            ),
            (CatalogEngine::Trino, TableFormat::Delta) => format!(
                "-- columns: {}\nCALL {}.system.register_table(schema_name => {}, table_name \
                 => {}, table_location => {location});",
                column_list(engine, layout, true)?.replace('\n', ""),
                engine.quoted(&trino_catalog),
                engine.literal(&names.schema),
                engine.literal(&layout.name),
            ),
        };
        write!(sql, "\n{statement}\n").expect("writing to a string");
    }
    Ok(sql)
}

/// Where a table is, as `engine` takes it: a local table by its path, one in object
/// storage by its URL in the scheme of the engine's filesystem: Spark and Hive read S3
/// through Hadoop's `s3a://`; Spark, Hive and Trino read Azure Blob Storage as
/// `abfss://CONTAINER@ACCOUNT.dfs.core.windows.net/`, where exdep's `az://CONTAINER/` leaves
/// the account to the environment.
fn table_location(
    engine: CatalogEngine,
    output: &Output,
    table: &str,
    names: &CatalogNames,
) -> Result<String> {
    let url = output.table(table).url().clone();
    let hadoop = matches!(engine, CatalogEngine::Spark | CatalogEngine::Hive);
    let text = match (url.scheme(), url.to_file_path()) {
        ("file", Ok(path)) => path.display().to_string(),
        ("s3", _) if hadoop => url.as_str().replacen("s3://", "s3a://", 1),
        ("az" | "azure", _) if engine != CatalogEngine::Duckdb => {
            let account = names.azure_account.as_deref().ok_or_else(|| {
                Error::Unsupported(format!(
                    "{url}: the output's storage account is not set; {engine:?} names it in \
                     the table's abfss:// location: set `[storage] azure_storage_account_name` \
                     or AZURE_STORAGE_ACCOUNT_NAME, or give the output as \
                     abfss://CONTAINER@ACCOUNT.dfs.core.windows.net/PATH"
                ))
            })?;
            format!(
                "abfss://{}@{account}.dfs.core.windows.net{}",
                url.host_str().unwrap_or_default(),
                url.path()
            )
        }
        _ => url.to_string(),
    };
    Ok(text.trim_end_matches('/').to_string())
}

/// The file columns, one per line, and with `with_partitions` the partition columns after
/// them, each with its type.
fn column_list(
    engine: CatalogEngine,
    layout: &TableLayout,
    with_partitions: bool,
) -> Result<String> {
    let mut columns = (layout.file_schema.fields().iter())
        .map(|field| Ok((field.name().clone(), engine.type_name(field.data_type())?)))
        .collect::<Result<Vec<_>>>()?;
    if with_partitions {
        for column in &layout.partition_by {
            columns.push((
                column.clone(),
                engine.type_name(&partition_column_type(column))?,
            ));
        }
    }
    Ok(columns
        .iter()
        .map(|(name, kind)| format!("  {} {kind}", engine.quoted(name)))
        .collect::<Vec<_>>()
        .join(",\n"))
}

/// The partition columns' names, outermost first.
fn partition_names(engine: CatalogEngine, layout: &TableLayout) -> String {
    (layout.partition_by.iter())
        .map(|column| engine.quoted(column))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The partition columns with their types, outermost first.
fn partition_columns(engine: CatalogEngine, layout: &TableLayout) -> Result<String> {
    Ok((layout.partition_by.iter())
        .map(|column| {
            Ok(format!(
                "{} {}",
                engine.quoted(column),
                engine.type_name(&partition_column_type(column))?
            ))
        })
        .collect::<Result<Vec<_>>>()?
        .join(", "))
}

/// A DuckDB view over the table's files, every column cast to its declared type (a view
/// keeps partition pruning through the casts).
fn duckdb_view(
    table: &str,
    layout: &TableLayout,
    location: &str,
    format: TableFormat,
) -> Result<String> {
    let engine = CatalogEngine::Duckdb;
    let mut casts = Vec::new();
    for field in layout.file_schema.fields() {
        casts.push((field.name().clone(), engine.type_name(field.data_type())?));
    }
    for column in &layout.partition_by {
        casts.push((
            column.clone(),
            engine.type_name(&partition_column_type(column))?,
        ));
    }
    let select = (casts.iter())
        .map(|(name, kind)| {
            let name = engine.quoted(name);
            format!("  CAST({name} AS {kind}) AS {name}")
        })
        .collect::<Vec<_>>()
        .join(",\n");
    let source = match format {
        TableFormat::Parquet => {
            let hive_types = (layout.partition_by.iter())
                .map(|column| {
                    Ok(format!(
                        "'{column}': {}",
                        engine.type_name(&partition_column_type(column))?
                    ))
                })
                .collect::<Result<Vec<_>>>()?
                .join(", ");
            format!(
                "read_parquet({}, hive_partitioning = true, hive_types = {{{hive_types}}})",
                engine.literal(&format!("{location}/**/*.parquet"))
            )
        }
        TableFormat::Delta => format!("delta_scan({})", engine.literal(location)),
    };
    Ok(format!(
        "CREATE OR REPLACE VIEW {table} AS\nSELECT\n{select}\nFROM {source};"
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use exdep_core::arrow::datatypes::{Field, Schema};

    use super::*;

    fn indices() -> TableLayout {
        TableLayout {
            name: "indices".into(),
            partition_by: vec!["year".into(), "province".into()],
            file_schema: Arc::new(Schema::new(vec![
                Field::new("category", DataType::Utf8, false),
                Field::new("destinations", DataType::Int64, false),
            ])),
        }
    }

    fn ddl(engine: CatalogEngine, format: TableFormat) -> Result<String> {
        let config = exdep_core::Config::parse(
            "years = [2020]\noutput = \"s3://lake/exdep\"\nwarehouse = \"s3://lake/_w\"\n",
            std::path::Path::new("/jobs/nightly.toml"),
        )
        .unwrap();
        let names = CatalogNames {
            schema: "exdep".into(),
            trino_catalog: None,
            azure_account: None,
        };
        catalog_ddl(engine, &[indices()], &Output::of(&config), format, &names)
    }

    #[test]
    fn locations_take_each_engines_scheme() {
        let location = |engine, output: &str, account: Option<&str>| {
            let output = Output::new(exdep_core::Location::parse_url(output).unwrap());
            let names = CatalogNames {
                schema: "exdep".into(),
                trino_catalog: None,
                azure_account: account.map(str::to_string),
            };
            table_location(engine, &output, "lq", &names)
        };
        let s3 = "s3://lake/exdep/";
        assert_eq!(
            location(CatalogEngine::Spark, s3, None).unwrap(),
            "s3a://lake/exdep/lq"
        );
        assert_eq!(
            location(CatalogEngine::Hive, s3, None).unwrap(),
            "s3a://lake/exdep/lq"
        );
        assert_eq!(
            location(CatalogEngine::Trino, s3, None).unwrap(),
            "s3://lake/exdep/lq"
        );
        assert_eq!(
            location(CatalogEngine::Duckdb, s3, None).unwrap(),
            "s3://lake/exdep/lq"
        );
        let az = "az://lake/exdep";
        for engine in [
            CatalogEngine::Spark,
            CatalogEngine::Hive,
            CatalogEngine::Trino,
        ] {
            assert_eq!(
                location(engine, az, Some("acct")).unwrap(),
                "abfss://lake@acct.dfs.core.windows.net/exdep/lq"
            );
            let error = location(engine, az, None).unwrap_err().to_string();
            assert!(error.contains("azure_storage_account_name"), "{error}");
        }
        assert_eq!(
            location(CatalogEngine::Duckdb, az, None).unwrap(),
            "az://lake/exdep/lq"
        );
        let gs = "gs://lake/exdep";
        assert_eq!(
            location(CatalogEngine::Spark, gs, None).unwrap(),
            "gs://lake/exdep/lq"
        );
    }

    #[test]
    fn every_dialect_declares_province_as_text_and_year_as_an_integer() {
        let spark = ddl(CatalogEngine::Spark, TableFormat::Parquet).unwrap();
        assert!(
            spark.contains("`year` INT,\n  `province` STRING\n)"),
            "{spark}"
        );
        assert!(
            spark.contains("PARTITIONED BY (`year`, `province`)"),
            "{spark}"
        );
        assert!(
            spark.contains("LOCATION 's3a://lake/exdep/indices'"),
            "{spark}"
        );
        assert!(
            spark.contains("MSCK REPAIR TABLE `exdep`.`indices`;"),
            "{spark}"
        );
        let hive = ddl(CatalogEngine::Hive, TableFormat::Parquet).unwrap();
        assert!(
            hive.contains("PARTITIONED BY (`year` INT, `province` STRING)"),
            "{hive}"
        );
        assert!(
            !hive.contains("`province` STRING\n)"),
            "not among the columns: {hive}"
        );
        let trino = ddl(CatalogEngine::Trino, TableFormat::Parquet).unwrap();
        assert!(trino.contains("\"province\" VARCHAR"), "{trino}");
        assert!(
            trino.contains("partitioned_by = ARRAY['year', 'province']"),
            "{trino}"
        );
        assert!(
            trino.contains("CALL \"hive\".system.sync_partition_metadata"),
            "{trino}"
        );
        let duckdb = ddl(CatalogEngine::Duckdb, TableFormat::Parquet).unwrap();
        assert!(
            duckdb.contains("hive_types = {'year': INTEGER, 'province': VARCHAR}"),
            "{duckdb}"
        );
        assert!(duckdb.contains("CAST(\"province\" AS VARCHAR) AS \"province\""));
    }

    #[test]
    fn literals_escape_as_each_engine_does() {
        assert_eq!(CatalogEngine::Spark.literal(r"C:\a'b"), r"'C:\\a\'b'");
        assert_eq!(CatalogEngine::Hive.literal("o'x"), r"'o\'x'");
        assert_eq!(CatalogEngine::Trino.literal("o'x"), "'o''x'");
        assert_eq!(CatalogEngine::Duckdb.literal(r"a\b"), r"'a\b'");
    }

    #[test]
    fn delta_tables_are_registered_by_location_and_hive_is_refused() {
        let spark = ddl(CatalogEngine::Spark, TableFormat::Delta).unwrap();
        assert!(spark.contains("USING delta\nLOCATION 's3a://lake/exdep/indices'"));
        let trino = ddl(CatalogEngine::Trino, TableFormat::Delta).unwrap();
        assert!(
            trino.contains("CALL \"delta\".system.register_table"),
            "{trino}"
        );
        let duckdb = ddl(CatalogEngine::Duckdb, TableFormat::Delta).unwrap();
        assert!(duckdb.contains("FROM delta_scan('s3://lake/exdep/indices')"));
        let refused = ddl(CatalogEngine::Hive, TableFormat::Delta).unwrap_err();
        assert!(refused.to_string().contains("Hive"), "{refused}");
    }
}
