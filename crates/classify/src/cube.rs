//! The classified cube, one input file at a time: one plan reads the file's checked records,
//! sums them by their raw codes, classifies the sums with the code tables and converts the
//! currencies, and yields the file's partial cube, the fate of each record (counts and value
//! sums) and its rejected records. Each file's partial cube is its own object in every year
//! partition of `cube/`, so a changed file is read again alone; a year's cube is the exact
//! sum of its files' partials.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use exdep_core::Tally;
use exdep_core::account::{RecordCounts, SourceDisposition};
use exdep_core::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray, UInt32Array};
use exdep_core::arrow::compute::{cast, filter_record_batch, is_not_null, take_record_batch};
use exdep_core::arrow::datatypes::{
    DataType, Decimal128Type, Field, Int32Type, Int64Type, Schema, SchemaRef,
};
use exdep_core::months::Slice;
use exdep_core::schema::{
    CUBE_FILE, MAX_RECORD_VALUE, PRODUCTS_FILE, REJECTS_FILE, UNKNOWN_YEAR, YEAR,
};
use exdep_core::sql::{MONEY_DECIMAL, year_list};
use exdep_engine::datafusion::datasource::MemTable;
use exdep_engine::datafusion::error::DataFusionError;
use exdep_engine::datafusion::execution::SendableRecordBatchStream;
use exdep_engine::datafusion::execution::memory_pool::{
    MemoryConsumer, MemoryLimit, MemoryReservation,
};
use exdep_engine::datafusion::prelude::SessionContext;
use exdep_engine::{
    CELL_ORIGIN_SHIFT, CELL_PART, PRODUCT_CODE, PRODUCT_SUMS, cell_sql, register_layer,
    register_scratch,
};
use exdep_store::layout::{Layer, Staging, Warehouse};
use exdep_store::{Objects, PartitionedWriter};
use futures::StreamExt;
use tracing::info;

use crate::error::{Error, Result};
use crate::tables::MONTHLY_EXCHANGE_RATES;

/// The disposition of records counted in the cube.
const CLASSIFIED: &str = "classified";

/// Everything one pass over an input file found.
#[derive(Debug, Clone, Default)]
pub struct FileClassification {
    /// What the checks made of its records.
    pub records: RecordCounts,
    /// What classification did with the accepted records, by year.
    pub dispositions: BTreeMap<i32, SourceDisposition>,
    /// Partial cube cells written, by year.
    pub cells_by_year: BTreeMap<i32, u64>,
    /// Its accepted records by year, origin and currency, with their months.
    pub slices: Vec<Slice>,
}

/// How a plan brings its sums of `g` their exchange rates: the joins (`rates`) and the rate
/// of each sum in yuan a dollar (`rate`). A sum of records of a month takes that month's rate
/// when the config names monthly rates (`exchange-rates-monthly`), its year's otherwise;
/// annual records (month 0) always take their year's.
struct Conversion {
    rates: String,
    rate: &'static str,
}

impl Conversion {
    fn of(monthly_rates: bool) -> Self {
        // The code tables' columns are cast on their few rows, not on every joined row.
        let yearly = "LEFT JOIN (
                SELECT CAST(year AS INT) AS year, CAST(cny_per_usd AS DOUBLE) AS cny_per_usd
                FROM exchange_rates
            ) x ON g.year = x.year";
        if monthly_rates {
            Conversion {
                rates: format!(
                    "{yearly}
                    LEFT JOIN (
                        SELECT CAST(year AS INT) AS year, CAST(month AS INT) AS month,
                            CAST(cny_per_usd AS DOUBLE) AS cny_per_usd
                        FROM {MONTHLY_EXCHANGE_RATES}
                    ) xm ON g.year = xm.year AND g.month = xm.month"
                ),
                rate: "coalesce(xm.cny_per_usd, x.cny_per_usd)",
            }
        } else {
            Conversion {
                rates: yearly.to_string(),
                rate: "x.cny_per_usd",
            }
        }
    }
}

/// `value`, in USD where `in_usd` holds and else in CNY, in USD and in CNY at `rate` yuan a
/// dollar.
fn converted(in_usd: &str, value: &str, rate: &str) -> (String, String) {
    let at_rate = |in_currency: &str, operator: &str| {
        format!(
            "CASE WHEN {in_currency} THEN {value}
                 ELSE CAST(CAST({value} AS DOUBLE) {operator} {rate} AS {MONEY_DECIMAL})
            END"
        )
    };
    (
        at_rate(in_usd, "/"),
        at_rate(&format!("NOT ({in_usd})"), "*"),
    )
}

/// A slice keeps a cell's bits from its origin's up (origin and year) and its currency bit.
const SLICE_SHIFT: i64 = 1 << CELL_ORIGIN_SHIFT;

/// With monthly rates, months take the low bits of the key records are summed by: a cell's
/// key times this, plus the month (0 for an annual record). A cell has 52 bits, so the key
/// is still a non-negative `Int64`.
const MONTH_SLOTS: u32 = 16;

/// The key a plan sums a file's checked records by (its `cell` and `month` columns), and
/// the cell and month of that key when it is named `key`: the cell alone, or with monthly
/// rates the cell and month, so that each month's sums are converted at its rate.
fn summing_key(monthly_rates: bool, key: &str) -> (String, String, String) {
    if monthly_rates {
        (
            format!("cell * {MONTH_SLOTS} + coalesce(CAST(month AS BIGINT), 0)"),
            format!("{key} / {MONTH_SLOTS}"),
            format!("CAST({key} % {MONTH_SLOTS} AS INT)"),
        )
    } else {
        ("cell".to_string(), key.to_string(), "0".to_string())
    }
}

/// What a file's plans need to know of the run.
#[derive(Debug, Clone)]
pub struct FileSettings {
    /// The run's years.
    pub years: BTreeSet<i32>,
    /// The provinces: the origins whose exports to China itself are left out.
    pub provinces: Vec<String>,
    /// Whether the config names monthly exchange rates (`exchange-rates-monthly`).
    pub monthly_rates: bool,
    /// Whether the run keeps the product cube (`product-margins = true`).
    pub product_margins: bool,
    /// Whether the file's plans run in this process (an embedded run, not a cluster's
    /// client): a file's grouped records may then be held in memory (see [`classify_file`]).
    pub embedded: bool,
}

/// The rules of classification for a cell (`cell`, an integer): the HS chapters the code
/// table excludes, and a province's exports to China itself, are left out of the cube; the
/// rest is classified. Each rule as an SQL condition, with the rule's name.
fn exclusion_rules(cell: &str, provinces: &[String]) -> [(String, &'static str); 2] {
    [
        (
            cell_sql::category_is(cell, "excluded"),
            "excluded_hs_chapter",
        ),
        (
            format!(
                "{} AND {}",
                cell_sql::partner_is(cell, "CHN"),
                cell_sql::origin_in(cell, provinces)
            ),
            "partner_is_china",
        ),
    ]
}

/// What classification does with the sums of a cell (`cell`): the name of the rule that
/// leaves it out of the cube (see [`exclusion_rules`]), or `classified`.
fn classification(cell: &str, provinces: &[String]) -> String {
    let rules: String = (exclusion_rules(cell, provinces).iter())
        .map(|(condition, rule)| format!("WHEN {condition} THEN '{rule}' "))
        .collect();
    format!("CASE {rules}ELSE '{CLASSIFIED}' END")
}

/// Whether a cell (`cell`) is classified: no rule of [`exclusion_rules`] leaves it out.
fn is_classified(cell: &str, provinces: &[String]) -> String {
    let rules: Vec<String> = (exclusion_rules(cell, provinces).iter())
        .map(|(condition, _)| format!("NOT ({condition})"))
        .collect();
    rules.join(" AND ")
}

/// The separator of the fields of a record's `detail` (see [`detail_of`]): a control
/// character, which no year, reason, rule or line number holds.
const DETAIL_SEPARATOR: &str = "chr(31)";

/// What sets apart records that did not pass every check, as one text (their `detail`):
/// their year, reason, rule, line and text (`raw`), each field empty where it is null and
/// the text, the last field and the only one that may hold the separator, marked with a
/// leading `+` where it is not null. Records are summed by their cell and their detail,
/// two columns rather than six: the engine compares and hashes every column it groups by
/// for every record, and a record that passed every check has no detail.
fn detail_of(year: &str, reason: &str, rule: &str, line: &str, raw: &str) -> String {
    let text = |field: &str| format!("coalesce(CAST({field} AS VARCHAR), '')");
    format!(
        "concat({}, {DETAIL_SEPARATOR}, {}, {DETAIL_SEPARATOR}, {}, {DETAIL_SEPARATOR}, {},
            {DETAIL_SEPARATOR}, CASE WHEN {raw} IS NOT NULL THEN concat('+', {raw}) ELSE '' END)",
        text(year),
        text(reason),
        text(rule),
        text(line)
    )
}

/// The fields of `detail` (see [`detail_of`]) as columns `year`, `reason`, `rule`, `line`
/// and `raw`, each null where the detail is.
fn detail_fields(detail: &str) -> String {
    let field = |n: usize| format!("nullif(split_part({detail}, {DETAIL_SEPARATOR}, {n}), '')");
    let raw_start = format!(
        "length(split_part({detail}, {DETAIL_SEPARATOR}, 1))
            + length(split_part({detail}, {DETAIL_SEPARATOR}, 2))
            + length(split_part({detail}, {DETAIL_SEPARATOR}, 3))
            + length(split_part({detail}, {DETAIL_SEPARATOR}, 4)) + 5"
    );
    format!(
        "CAST({} AS INT) AS year, {} AS reason, {} AS rule, CAST({} AS BIGINT) AS line,
        CASE WHEN substr({detail}, {raw_start}, 1) = '+'
            THEN substr({detail}, {raw_start} + 1) END AS raw",
        field(1),
        field(2),
        field(3),
        field(4)
    )
}

/// A file's checked records (see `exdep_ingest::PreparedFile`) summed by what the file's
/// plans keep apart: records that passed every check by their cell alone, one integer (see
/// [`exdep_engine::CellDomain`]); the others by their `detail` (see [`detail_of`]): their
/// year and reason or rule, a rejected one with its line and text. Each row has the
/// records' count (`records`), their exact sum (`value`) and the set of their months
/// (`months`: bit m for month m, bit 0 for none); with `product-margins = true` also the
/// same sums by product within a cell (`products`, see [`PRODUCT_CODE`] and
/// [`PRODUCT_SUMS`]).
fn grouped_sql(checked: &str, settings: &FileSettings) -> String {
    let (unit, _, _) = summing_key(settings.monthly_rates, "unit");
    let detail = detail_of(
        "year",
        "reason",
        "rule",
        "CASE WHEN reason IS NOT NULL THEN line END",
        "CASE WHEN reason IS NOT NULL THEN raw END",
    );
    let (product, by_product) = if settings.product_margins {
        (
            format!("{PRODUCT_CODE}(hs_code) AS product,"),
            format!(", {PRODUCT_SUMS}(product, value) AS products"),
        )
    } else {
        (String::new(), String::new())
    };
    format!(
        "SELECT unit, detail, count(*) AS records, sum(value) AS value,
            bit_or(month_bit) AS months {by_product}
        FROM (
            SELECT {unit} AS unit, {product}
                CASE WHEN cell IS NOT NULL THEN
                    CAST(1 AS BIGINT) << coalesce(CAST(month AS BIGINT), 0)
                END AS month_bit,
                CASE WHEN cell IS NULL THEN {detail} END AS detail,
                CASE WHEN abs(value) <= {MAX_RECORD_VALUE:e}
                    THEN CAST(value AS {MONEY_DECIMAL}) END AS value
            FROM ({checked})
        )
        GROUP BY unit, detail"
    )
}

/// The plan over a file's grouped records (`grouped`, see [`grouped_sql`]): its rows
/// are the partial cube's cells, the tallies of every other fate, the rejected records,
/// each once with its multiplicity, and the file's slices (its accepted records by year,
/// origin and currency, with their months; `slice = 1`). Only after the groups are summed
/// are the cells read back into their codes, and the code tables and exchange rates joined
/// to those sums, not to records. Money is summed as exact decimals, so the result does not
/// depend on the order records arrive in.
fn file_sql(grouped: &str, settings: &FileSettings) -> String {
    let years = year_list(&settings.years);
    let monthly_rates = settings.monthly_rates;
    let Conversion { rates, rate } = Conversion::of(monthly_rates);
    let (usd, cny) = converted("g.currency = 'USD'", "g.value", rate);
    let part = |cell: &str, name: &str| format!("{CELL_PART}({cell}, '{name}')");
    let (year, origin, partner) = (
        part("cell", "year"),
        part("cell", "origin"),
        part("cell", "partner"),
    );
    let (category, currency) = (part("cell", "category"), part("cell", "currency"));
    let (slice_year, slice_origin) = (part("slice_cell", "year"), part("slice_cell", "origin"));
    let slice_currency = part("slice_cell", "currency");
    let cube_only = |column: &str| {
        format!("CASE WHEN disposition = '{CLASSIFIED}' THEN {column} END AS cube_{column}")
    };
    let (cube_province, cube_partner) = (cube_only("province"), cube_only("partner"));
    let (cube_region, cube_category) = (cube_only("region"), cube_only("category"));
    // A group's unit is its cell, or its cell and month where a month's rate converts its
    // sums (see `summing_key`). A slice is a cell's year, origin and currency bits (partner
    // and category dropped).
    let (_, cell, month) = summing_key(monthly_rates, "unit");
    let classification = classification("g.cell", &settings.provinces);
    let detail_fields = detail_fields("detail");
    let slice_key = format!("({cell} / {SLICE_SHIFT}) * 2 + {cell} % 2");
    let slice_cell = format!("(slice_key / 2) * {SLICE_SHIFT} + slice_key % 2");
    format!(
        "SELECT year, reject_year, reason, rule, disposition,
            cube_province AS province, cube_partner AS partner, cube_region AS region,
            cube_category AS category, line, raw, origin, currency,
            CAST(slice_key IS NOT NULL AS INT) AS slice, bit_or(months) AS months,
            sum(records) AS records, sum(value) AS value,
            sum(CASE WHEN disposition = '{CLASSIFIED}' THEN usd END) AS exports_usd,
            sum(CASE WHEN disposition = '{CLASSIFIED}' THEN cny END) AS exports_cny
        FROM (
            SELECT year, reject_year, reason, rule, disposition, {cube_province},
                {cube_partner}, {cube_region}, {cube_category}, line, raw, slice_key,
                slice_origin AS origin, slice_currency AS currency, months, records, value,
                usd, cny
            FROM (
                SELECT g.year, g.reason, g.rule, g.province, g.partner, g.line, g.raw,
                    g.records, g.value, p.region, g.category, g.slice_key, g.slice_origin,
                    g.slice_currency, g.months,
                    CASE WHEN g.year IN ({years}) THEN g.year ELSE {UNKNOWN_YEAR} END
                        AS reject_year,
                    CASE
                        WHEN g.reason IS NOT NULL OR g.rule IS NOT NULL THEN NULL
                        WHEN g.cell IS NULL THEN NULL
                        ELSE {classification}
                    END AS disposition,
                    {usd} AS usd, {cny} AS cny
                FROM (
                    SELECT cell,
                        coalesce(CAST({year} AS INT), CAST({slice_year} AS INT), year) AS year,
                        reason, rule, line, raw, records, value, {origin} AS province,
                        {partner} AS partner, {category} AS category, {currency} AS currency,
                        month, slice_key, {slice_origin} AS slice_origin,
                        {slice_currency} AS slice_currency,
                        CASE WHEN slice_key IS NOT NULL THEN months END AS months
                    FROM (
                        SELECT {cell} AS cell, {month} AS month, slice_key,
                            {slice_cell} AS slice_cell, {detail_fields}, records, value,
                            months
                        FROM (
                            SELECT unit, slice_key, detail, sum(records) AS records,
                                sum(value) AS value, bit_or(months) AS months
                            FROM (
                                SELECT unit,
                                    CASE WHEN unit IS NOT NULL THEN {slice_key} END
                                        AS slice_key,
                                    detail, records, value, months
                                FROM ({grouped})
                            )
                            GROUP BY GROUPING SETS ((unit, detail), (slice_key))
                            HAVING grouping(slice_key) = 1 OR slice_key IS NOT NULL
                        )
                    )
                ) g
                LEFT JOIN partner_regions p ON g.partner = p.iso3
                {rates}
            )
        )
        GROUP BY year, reject_year, reason, rule, disposition, cube_province, cube_partner,
            cube_region, cube_category, line, raw, slice_key, origin, currency
        ORDER BY slice, year, reject_year, reason, rule, disposition, province, partner,
            category, line, raw, origin, currency"
    )
}

/// Reads the file whose checked records `checked` plans (URL `source`) in one pass, and
/// writes its partial cube and its rejected records to the `cube` and `rejects` layers of
/// the run's staging folder, with `product-margins = true` its partial product cube to the
/// `products` layer, one object `PART` per year partition: they become part of the
/// warehouse only when the run commits them ([`commit_files`]). The code tables must be
/// registered. With product margins the pass keeps the file's records grouped by cell, with
/// their sums by product, for the cube's and the product cube's plans to read: in memory in
/// an embedded run while they take at most an eighth of the memory limit, else in a scratch
/// file (in [`Staging::grouped_records`]).
pub async fn classify_file(
    ctx: &SessionContext,
    checked: &str,
    source: &str,
    part: &str,
    staging: &Staging,
    settings: &FileSettings,
) -> Result<FileClassification> {
    let grouped = grouped_sql(checked, settings);
    let scratch = if settings.product_margins {
        let table = format!(
            "grouped_{}",
            part.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        );
        let held = keep_grouped(ctx, &grouped, source, part, staging, settings, &table).await?;
        Some((table, held))
    } else {
        None
    };
    let by_cell = match &scratch {
        Some((table, _)) => format!("SELECT unit, detail, records, value, months FROM {table}"),
        None => grouped,
    };
    let pass = FilePass {
        ctx,
        source,
        part,
        staging,
        settings,
    };
    let outcome = classify_groups(pass, &by_cell).await;
    let Some((table, _held)) = scratch else {
        return outcome;
    };
    // The product cube only for a file whose cube was made; the scratch table goes either
    // way, and the first failure is the one reported.
    let products = match &outcome {
        Ok(_) => classify_products(pass, &format!("SELECT * FROM {table}")).await,
        Err(_) => Ok(()),
    };
    ctx.deregister_table(table.as_str())?;
    let outcome = outcome?;
    products?;
    Ok(outcome)
}

/// A file's pass: the session its plans run in, the file's URL (`source`), the name of its
/// objects in each layer (`part`), the run's staging folder and the file settings.
#[derive(Clone, Copy)]
struct FilePass<'a> {
    ctx: &'a SessionContext,
    source: &'a str,
    part: &'a str,
    staging: &'a Staging,
    settings: &'a FileSettings,
}

impl FilePass<'_> {
    /// The rows of `sql`, a plan over the file.
    async fn rows(&self, sql: &str) -> Result<SendableRecordBatchStream> {
        rows_of(self.ctx, sql, self.source).await
    }

    /// A writer of the file's object in each year partition of `layer` in the staging
    /// folder, of columns `schema`.
    fn writer(&self, layer: Layer, schema: &SchemaRef) -> Result<PartitionedWriter> {
        Ok(self
            .staging
            .layer_writer(self.ctx, layer, self.part, schema)?)
    }
}

/// The part of the memory limit a file's grouped records may hold in memory (one
/// divided by this): several files are read side by side, and their plans need the rest.
const HELD_SHARE: usize = 8;

/// Runs `grouped` (the grouped records of the file at URL `source`) and registers its rows
/// as table `table`: held in memory, with the memory they take reserved in the session's
/// pool, while the run is embedded and they fit in their share of the memory limit
/// ([`HELD_SHARE`]); else (from the batch that would not fit on) written to a scratch file
/// in [`Staging::grouped_records`]. Returns the reservation, to keep while the table is.
async fn keep_grouped(
    ctx: &SessionContext,
    grouped: &str,
    source: &str,
    part: &str,
    staging: &Staging,
    settings: &FileSettings,
    table: &str,
) -> Result<MemoryReservation> {
    let pool = &ctx.runtime_env().memory_pool;
    let share = match pool.memory_limit() {
        MemoryLimit::Finite(limit) if settings.embedded => Some(limit / HELD_SHARE),
        _ => None,
    };
    let reservation = MemoryConsumer::new(format!("grouped records of {source}")).register(pool);
    let mut rows = rows_of(ctx, grouped, source).await?;
    let schema = rows.schema();
    let location = staging.grouped_records();
    let file = format!("{part}.arrow");
    let scratch = || -> Result<PartitionedWriter> {
        Ok(PartitionedWriter::new(ctx, &location, &[], &file)?
            .with_file_schema(schema.clone())
            .scratch())
    };
    let mut held = Vec::new();
    let mut spilled = match share {
        Some(_) => None,
        None => Some(scratch()?),
    };
    while let Some(batch) = rows.next().await {
        let batch = batch.map_err(|e| read_error(source, e))?;
        if let (None, Some(share)) = (&spilled, share) {
            let bytes = held_bytes(&batch)?;
            if reservation.size() + bytes <= share && reservation.try_grow(bytes).is_ok() {
                held.push(batch);
                continue;
            }
            let mut writer = scratch()?;
            for kept in held.drain(..) {
                writer.write(&kept).await?;
            }
            reservation.free();
            spilled = Some(writer);
        }
        let writer = spilled.as_mut().expect("opened above");
        writer.write(&batch).await?;
    }
    match spilled {
        None => {
            let rows = MemTable::try_new(schema, vec![held])?;
            ctx.register_table(table, Arc::new(rows))?;
        }
        Some(mut writer) => {
            // A file of no records still has its (empty) scratch file to read.
            writer.write_empty_partition(&[]).await?;
            writer.finish().await?;
            let location = location.join(&file);
            register_scratch(ctx, table, &location, Some(&schema), &[]).await?;
        }
    }
    Ok(reservation)
}

/// The memory the rows of `batch` take, not counting the rest of buffers it shares.
fn held_bytes(batch: &RecordBatch) -> Result<usize> {
    let mut bytes = 0;
    for column in batch.columns() {
        bytes += column.to_data().get_slice_memory_size()?;
    }
    Ok(bytes)
}

/// The partial cube, the tallies and the rejects of a file from its grouped records
/// (`grouped`, see [`classify_file`]).
async fn classify_groups(pass: FilePass<'_>, grouped: &str) -> Result<FileClassification> {
    let source = pass.source;
    let mut rows = pass.rows(&file_sql(grouped, pass.settings)).await?;
    let mut outcome = FileClassification::default();
    let mut cube = pass.writer(Layer::Cube, &CUBE_FILE)?;
    let mut rejects = pass.writer(Layer::Rejects, &REJECTS_FILE)?;
    while let Some(batch) = rows.next().await {
        let batch = batch.map_err(|e| read_error(source, e))?;
        let is_slice = exdep_core::arrow::compute::kernels::cmp::eq(
            &cast(column(&batch, "slice"), &DataType::Int32)?,
            &exdep_core::arrow::array::Int32Array::new_scalar(1),
        )?;
        outcome
            .slices
            .extend(slices_of(&filter_record_batch(&batch, &is_slice)?)?);
        let batch = filter_record_batch(&batch, &exdep_core::arrow::compute::not(&is_slice)?)?;
        tally(&batch, source, &mut outcome)?;
        cube.write(&cube_cells_of(&batch)?).await?;
        rejects.write(&rejects_of(&batch, source)?).await?;
    }
    for written in cube.finish().await? {
        let year = written.partition[0]
            .1
            .parse()
            .expect("year partitions are integers");
        outcome.cells_by_year.insert(year, written.rows);
    }
    rejects.finish().await?;
    let excluded_by_classification: u64 = (outcome.dispositions.values())
        .map(|disposition| exdep_core::total(&disposition.excluded).records)
        .sum();
    info!(
        file = source,
        read = outcome.records.read,
        rejected = exdep_core::total(&outcome.records.rejected).records,
        excluded_by_format = exdep_core::total(&outcome.records.excluded).records,
        accepted = outcome.records.accepted.records,
        excluded_by_classification,
        "classified"
    );
    Ok(outcome)
}

/// The plan of a file's partial product cube from its grouped records (`grouped`, see
/// [`grouped_sql`]): the sums of each cell and product, a pair of integers, converted and
/// classified, with no code read back into text: each year's rows are keyed by their
/// product key (see [`exdep_engine::cell_sql`]). Sums a rule leaves out of the cube have
/// no key; the caller drops them. What is the same for a cell's products (its year, rate
/// and whether a rule leaves it out) is found for its cell, before its products are
/// unnested: per product it was a join and the rules' comparisons on some 800,000 rows a
/// file of the 20M benchmark rather than 22,000. A key's sums in USD and in CNY (and with
/// monthly rates each month's) stay separate rows, as every reader of the product cube
/// sums a key's rows anyway: summing them here cost a grouping of every row (0.3-0.4 s of
/// CPU on the 20M benchmark, whose records mix the two currencies), and a file in one
/// currency has one row per key either way. Money is summed as exact decimals, as in
/// [`file_sql`], so the rows are written in the order they come: the run's sums of the
/// partial product cubes do not depend on it.
fn products_sql(grouped: &str, settings: &FileSettings) -> String {
    let (_, cell, month) = summing_key(settings.monthly_rates, "unit");
    let Conversion { rates, rate } = Conversion::of(settings.monthly_rates);
    let (usd, cny) = converted("in_usd", "sums['value']", "cny_per_usd");
    let key = cell_sql::product_key("cell", "sums['product']");
    format!(
        "SELECT year, CASE WHEN classified THEN {key} END AS key,
                {usd} AS exports_usd, {cny} AS exports_cny
            FROM (
                SELECT year, cell, classified, in_usd, cny_per_usd, unnest(products) AS sums
                FROM (
                    SELECT g.year, g.cell, g.classified, g.in_usd, {rate} AS cny_per_usd,
                        g.products
                    FROM (
                        SELECT cell, {year} AS year, month, {classified} AS classified,
                            {in_usd} AS in_usd, products
                        FROM (
                            SELECT {cell} AS cell, {month} AS month, products
                            FROM ({grouped})
                            WHERE unit IS NOT NULL
                        )
                    ) g
                    {rates}
                )
            )",
        year = cell_sql::year("cell"),
        classified = is_classified("cell", &settings.provinces),
        in_usd = cell_sql::in_usd("cell"),
    )
}

/// Writes the partial product cube of a file (its grouped records `grouped`, URL `source`)
/// to the `products` layer of the run's staging folder, one object `PART` per year
/// partition (see [`classify_file`]).
async fn classify_products(pass: FilePass<'_>, grouped: &str) -> Result<()> {
    let mut rows = pass.rows(&products_sql(grouped, pass.settings)).await?;
    let mut products = pass.writer(Layer::Products, &PRODUCTS_FILE)?;
    while let Some(batch) = rows.next().await {
        let batch = batch.map_err(|e| read_error(pass.source, e))?;
        let keyed = filter_record_batch(&batch, &is_not_null(column(&batch, "key"))?)?;
        products.write(&keyed).await?;
    }
    products.finish().await?;
    Ok(())
}

/// The rows of `sql`, a plan over the file at URL `source`.
async fn rows_of(
    ctx: &SessionContext,
    sql: &str,
    source: &str,
) -> Result<SendableRecordBatchStream> {
    let rows = async { ctx.sql(sql).await?.execute_stream().await };
    rows.await.map_err(|e| read_error(source, e))
}

/// A failure of a plan over the file at URL `source`: the file's reading failed.
fn read_error(source: &str, error: DataFusionError) -> Error {
    Error::Read {
        file: source.to_string(),
        source: Box::new(error),
    }
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> &'a ArrayRef {
    batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("the file plan has a `{name}` column"))
}

fn text_column(batch: &RecordBatch, name: &str) -> Result<StringArray> {
    Ok(cast(column(batch, name), &DataType::Utf8)?
        .as_string::<i32>()
        .clone())
}

/// Money in the plan's exact decimals as a double.
fn money(values: &exdep_core::arrow::array::PrimitiveArray<Decimal128Type>, row: usize) -> f64 {
    if values.is_null(row) {
        0.0
    } else {
        values.value(row) as f64 / 1e10
    }
}

/// Counts the rows of a file plan's result into `outcome`.
fn tally(batch: &RecordBatch, source: &str, outcome: &mut FileClassification) -> Result<()> {
    let years = cast(column(batch, YEAR), &DataType::Int32)?;
    let years = years.as_primitive::<Int32Type>();
    let reject_years = cast(column(batch, "reject_year"), &DataType::Int32)?;
    let reject_years = reject_years.as_primitive::<Int32Type>();
    let (reasons, rules) = (text_column(batch, "reason")?, text_column(batch, "rule")?);
    let dispositions = text_column(batch, "disposition")?;
    let records = cast(column(batch, "records"), &DataType::Int64)?;
    let records = records.as_primitive::<Int64Type>();
    let values = column(batch, "value").as_primitive::<Decimal128Type>();
    for row in 0..batch.num_rows() {
        let count = records.value(row) as u64;
        let tally = Tally {
            records: count,
            value: money(values, row),
        };
        outcome.records.read += count;
        if !years.is_null(row) {
            outcome.records.years_seen.insert(years.value(row));
        }
        if !rules.is_null(row) {
            let rule = rules.value(row).to_string();
            outcome.records.excluded.entry(rule).or_default().add(tally);
        } else if !reasons.is_null(row) {
            let reason = reasons.value(row).to_string();
            outcome
                .records
                .rejected
                .entry(reason)
                .or_default()
                .add(tally);
            if reject_years.value(row) == UNKNOWN_YEAR {
                outcome.records.rejected_without_year += count;
            }
        } else {
            let year = years.value(row);
            outcome.records.accepted.add(tally);
            *outcome.records.accepted_by_year.entry(year).or_default() += count;
            if dispositions.is_null(row) {
                return Err(Error::NoCell {
                    file: source.to_string(),
                    records: count,
                    year,
                });
            }
            let disposition = outcome.dispositions.entry(year).or_default();
            match dispositions.value(row) {
                CLASSIFIED => disposition.classified.add(tally),
                rule => disposition
                    .excluded
                    .entry(rule.to_string())
                    .or_default()
                    .add(tally),
            }
        }
    }
    Ok(())
}

/// The slices among a file plan's rows (those with `slice = 1`).
fn slices_of(batch: &RecordBatch) -> Result<Vec<Slice>> {
    let years = cast(column(batch, YEAR), &DataType::Int32)?;
    let years = years.as_primitive::<Int32Type>();
    let months = cast(column(batch, "months"), &DataType::Int64)?;
    let months = months.as_primitive::<Int64Type>();
    let (origins, currencies) = (
        text_column(batch, "origin")?,
        text_column(batch, "currency")?,
    );
    let records = cast(column(batch, "records"), &DataType::Int64)?;
    let records = records.as_primitive::<Int64Type>();
    let values = column(batch, "value").as_primitive::<Decimal128Type>();
    Ok((0..batch.num_rows())
        .map(|row| Slice {
            year: years.value(row),
            months: u16::try_from(months.value(row)).expect("months are bits 0-12"),
            origin: origins.value(row).to_string(),
            currency: currencies.value(row).to_string(),
            records: records.value(row) as u64,
            // Null when every value was out of range: those records are rejected, not
            // accepted, so a slice's sum is never null; zero keeps the type total.
            value: if values.is_null(row) {
                "0".to_string()
            } else {
                values.value_as_string(row)
            },
        })
        .collect())
}

/// The partial cube's cells among a file plan's rows.
fn cube_cells_of(batch: &RecordBatch) -> Result<RecordBatch> {
    let dispositions = text_column(batch, "disposition")?;
    let classified = exdep_core::arrow::compute::kernels::cmp::eq(
        &dispositions,
        &StringArray::new_scalar(CLASSIFIED),
    )?;
    let columns = [
        YEAR,
        "province",
        "partner",
        "region",
        "category",
        "exports_usd",
        "exports_cny",
        "records",
    ];
    let indices = columns
        .iter()
        .map(|name| batch.schema().index_of(name))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(filter_record_batch(&batch.project(&indices)?, &classified)?)
}

/// The rejected records among a file plan's rows, each as often as it occurred, filed
/// under their year (or year 0).
fn rejects_of(batch: &RecordBatch, source: &str) -> Result<RecordBatch> {
    let rejected = filter_record_batch(batch, &is_not_null(column(batch, "reason"))?)?;
    let records = cast(column(&rejected, "records"), &DataType::Int64)?;
    let repeated: UInt32Array = records
        .as_primitive::<Int64Type>()
        .values()
        .iter()
        .enumerate()
        .flat_map(|(row, count)| std::iter::repeat_n(row as u32, *count as usize))
        .collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new(YEAR, DataType::Int32, false),
        Field::new("line", DataType::Int64, true),
        Field::new("reason", DataType::Utf8, false),
        Field::new("raw", DataType::Utf8, true),
    ]));
    let distinct = RecordBatch::try_new(
        schema,
        vec![
            cast(column(&rejected, "reject_year"), &DataType::Int32)?,
            cast(column(&rejected, "line"), &DataType::Int64)?,
            cast(column(&rejected, "reason"), &DataType::Utf8)?,
            cast(column(&rejected, "raw"), &DataType::Utf8)?,
        ],
    )?;
    let every = take_record_batch(&distinct, &repeated)?;
    let sources: ArrayRef = Arc::new(StringArray::from(vec![source; every.num_rows()]));
    let mut fields = every.schema().fields().to_vec();
    fields.push(Arc::new(Field::new("source", DataType::Utf8, false)));
    let mut columns = every.columns().to_vec();
    columns.push(sources);
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

/// Makes the objects a run wrote under `staging` (its staging folder, see [`classify_file`])
/// the warehouse's: first every object of the per-file layers whose name is not in `kept`
/// is removed (the files read again, the files gone, and any object no run state accounts
/// for, such as a killed run's), then the staged objects are moved into place. Called only
/// once nothing can refuse the run any more, so a refused run leaves the warehouse as it was.
pub async fn commit_files(
    ctx: &SessionContext,
    staging: &Staging,
    warehouse: &Warehouse,
    kept: &BTreeSet<String>,
) -> Result<()> {
    for layer in Layer::ALL {
        let layer_root = warehouse.layer(layer);
        let orphans = layer_root
            .delete_where(ctx, |path| {
                path.filename().is_none_or(|name| !kept.contains(name))
            })
            .await?;
        if orphans > 0 {
            info!(layer = %layer_root, objects = orphans, "removed the objects of files no longer read as they were");
        }
        staging.layer(layer).move_into(ctx, &layer_root).await?;
    }
    Ok(())
}

/// The cells of the cube's `years`: per year, the province x partner x category
/// combinations whose exports, summed over the files' partials, are positive.
pub async fn cube_cells(
    ctx: &SessionContext,
    warehouse: &Warehouse,
    years: &BTreeSet<i32>,
) -> Result<BTreeMap<i32, u64>> {
    let mut cells = BTreeMap::new();
    let cube = warehouse.layer(Layer::Cube);
    if years.is_empty() || !cube.has_objects(ctx).await? {
        return Ok(cells);
    }
    let table = "cube_partials";
    register_layer(ctx, table, &cube, &CUBE_FILE).await?;
    let counted = ctx
        .sql(&format!(
            "SELECT year, count(*) AS cells FROM (
                SELECT year FROM {table} WHERE year IN ({years})
                GROUP BY year, province, partner, category HAVING sum(exports_usd) > 0
            ) GROUP BY year",
            years = year_list(years)
        ))
        .await?
        .collect()
        .await;
    ctx.deregister_table(table)?;
    for batch in counted? {
        let years = cast(column(&batch, YEAR), &DataType::Int32)?;
        let counts = cast(column(&batch, "cells"), &DataType::Int64)?;
        let (years, counts) = (
            years.as_primitive::<Int32Type>(),
            counts.as_primitive::<Int64Type>(),
        );
        for row in 0..batch.num_rows() {
            cells.insert(years.value(row), counts.value(row) as u64);
        }
    }
    Ok(cells)
}

/// Removes the warehouse's partitions of `years` from every layer (raw, cube, rejects): the
/// years a config no longer names, so that the cube holds the run's years only.
pub async fn drop_years(
    ctx: &SessionContext,
    warehouse: &Warehouse,
    years: &BTreeSet<i32>,
) -> Result<()> {
    for layer in Layer::ALL {
        for year in years {
            warehouse
                .layer(layer)
                .join(&format!("{YEAR}={year}"))
                .delete_all(ctx)
                .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use exdep_core::Location;
    use exdep_core::arrow::array::{Int32Array, Int64Array};
    use exdep_engine::datafusion::execution::memory_pool::FairSpillPool;
    use exdep_engine::datafusion::execution::runtime_env::RuntimeEnvBuilder;
    use exdep_engine::datafusion::execution::session_state::SessionStateBuilder;
    use exdep_store::layout::Warehouse;

    use super::*;

    /// A session of `exdep_engine::new_session` (its `memory://` store) whose plans hold at
    /// most `limit` bytes.
    fn session_with_limit(limit: usize) -> SessionContext {
        let ctx = exdep_engine::new_session();
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(FairSpillPool::new(limit)))
            .with_object_store_registry(ctx.runtime_env().object_store_registry.clone())
            .build_arc()
            .unwrap();
        let state = SessionStateBuilder::new_from_existing(ctx.state())
            .with_runtime_env(runtime)
            .build();
        SessionContext::new_with_state(state)
    }

    #[tokio::test]
    async fn grouped_records_stay_in_memory_only_within_their_share_of_an_embedded_run() {
        let staging = Warehouse::new(Location::parse_url("memory:///wh/").unwrap()).staging("r");
        // (memory limit, embedded, rows, held in memory): a cluster's file of no rows still
        // has its scratch file, which the executors read.
        let cases: [(usize, bool, i64, bool); 5] = [
            (256 << 20, true, 100_000, true),
            (256 << 10, true, 100_000, false),
            (256 << 20, false, 100_000, false),
            (256 << 20, false, 0, false),
            (256 << 20, true, 0, true),
        ];
        for (limit, embedded, rows, held) in cases {
            let grouped = format!(
                "SELECT value AS unit, value * 2 AS records FROM generate_series(1, {rows})"
            );
            let ctx = session_with_limit(limit);
            let settings = FileSettings {
                years: BTreeSet::new(),
                provinces: Vec::new(),
                monthly_rates: false,
                product_margins: true,
                embedded,
            };
            let part = format!("part-{limit}-{embedded}-{rows}");
            let reservation =
                keep_grouped(&ctx, &grouped, "in.csv", &part, &staging, &settings, "g")
                    .await
                    .unwrap();
            let case = format!("limit {limit}, embedded {embedded}, {rows} rows");
            let provider = ctx.table_provider("g").await.unwrap();
            let provider: &dyn std::any::Any = provider.as_ref();
            assert_eq!(provider.is::<MemTable>(), held, "{case}");
            assert_eq!(reservation.size() > 0, held && rows > 0, "{case}");
            let sums = ctx
                .sql("SELECT count(*) AS n, coalesce(sum(records), 0) AS s FROM g")
                .await
                .unwrap()
                .collect()
                .await
                .unwrap();
            let column = |name: &str| {
                sums[0]
                    .column_by_name(name)
                    .unwrap()
                    .as_primitive::<Int64Type>()
                    .value(0)
            };
            assert_eq!(
                (column("n"), column("s")),
                (rows, rows * (rows + 1)),
                "{case}"
            );
        }
    }

    #[tokio::test]
    async fn a_records_detail_reads_back_into_the_fields_it_was_made_of() {
        // (year, reason, rule, line, raw): texts holding the separator, a leading `+`, an
        // empty text beside a missing one, and fields missing in every combination.
        let separator = '\u{1f}';
        type Fields = (
            Option<i32>,
            Option<&'static str>,
            Option<&'static str>,
            Option<i64>,
        );
        let rows: Vec<(Fields, Option<String>)> = vec![
            (
                (Some(2019), Some("unknown_partner"), None, Some(17)),
                Some(format!("a{separator}c")),
            ),
            (
                (None, Some("missing_year"), None, Some(3)),
                Some(String::new()),
            ),
            ((Some(2020), None, Some("aggregate_row"), None), None),
            (
                (Some(2021), Some("bad_value"), None, None),
                Some("+lead".to_string()),
            ),
            (
                (None, Some("bad_year"), None, Some(5)),
                Some(format!("中{separator}{separator}")),
            ),
            ((None, None, None, None), None),
        ];
        let schema = Arc::new(Schema::new(vec![
            Field::new("year", DataType::Int32, true),
            Field::new("reason", DataType::Utf8, true),
            Field::new("rule", DataType::Utf8, true),
            Field::new("line", DataType::Int64, true),
            Field::new("raw", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int32Array::from_iter(rows.iter().map(|r| r.0.0))),
                Arc::new(StringArray::from_iter(rows.iter().map(|r| r.0.1))),
                Arc::new(StringArray::from_iter(rows.iter().map(|r| r.0.2))),
                Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.0.3))),
                Arc::new(StringArray::from_iter(rows.iter().map(|r| r.1.as_deref()))),
            ],
        )
        .unwrap();
        let ctx = exdep_engine::new_session();
        let table = MemTable::try_new(schema, vec![vec![batch.clone()]]).unwrap();
        ctx.register_table("records", Arc::new(table)).unwrap();
        let detail = detail_of("year", "reason", "rule", "line", "raw");
        let sql = format!(
            "SELECT {} FROM (SELECT n, {detail} AS detail FROM (
                SELECT row_number() OVER () AS n, * FROM records)) ORDER BY n",
            detail_fields("detail")
        );
        let read = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
        let read = exdep_core::arrow::compute::concat_batches(&read[0].schema(), &read).unwrap();
        for (index, name) in ["year", "reason", "rule", "line", "raw"].iter().enumerate() {
            let written = cast(batch.column(index), &DataType::Utf8).unwrap();
            let read = cast(column(&read, name), &DataType::Utf8).unwrap();
            assert_eq!(read.as_ref(), written.as_ref(), "{name}");
        }
    }
}
