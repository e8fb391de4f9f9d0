//! `exdep generate`: synthetic canonical records, one file per year.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use exdep_core::arrow::array::{Float64Builder, Int32Builder, RecordBatch, StringBuilder};
use exdep_core::arrow::datatypes::{DataType, Field, Schema};
use exdep_core::parquet::arrow::ArrowWriter;
use exdep_synth::Spec;

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    Csv,
    Parquet,
}

#[derive(clap::Args)]
pub struct GenerateArgs {
    /// Folder to write `exports-YYYY.csv` (or `.parquet`) into.
    #[arg(long)]
    out: PathBuf,
    /// First year.
    #[arg(long, default_value_t = 2017)]
    from: i32,
    /// Last year.
    #[arg(long, default_value_t = 2022)]
    to: i32,
    /// Records per year.
    #[arg(long, default_value_t = 10_000)]
    records_per_year: usize,
    /// Seed of the random stream.
    #[arg(long, default_value_t = 2025)]
    seed: u64,
    /// Fraction of records valued in CNY rather than USD.
    #[arg(long, default_value_t = 0.2)]
    cny_fraction: f64,
    /// Add one defective record after every N records (for trying the reconciliation).
    #[arg(long, value_name = "N")]
    dirty_every: Option<usize>,
    /// Fraction of records whose origin is a reporter country (CHN, VNM, DEU) instead of a
    /// province, for trying a run that mixes the two kinds of origin.
    #[arg(long, value_name = "FRACTION", default_value_t = 0.0)]
    country_origins: f64,
    /// Output format.
    #[arg(long, value_enum, default_value = "csv")]
    format: Format,
}

pub fn generate(args: GenerateArgs) -> Result<()> {
    if args.from > args.to {
        bail!("--from {} is after --to {}", args.from, args.to);
    }
    for (flag, fraction) in [
        ("--cny-fraction", args.cny_fraction),
        ("--country-origins", args.country_origins),
    ] {
        if !(0.0..=1.0).contains(&fraction) {
            bail!("{flag} must be between 0 and 1, not {fraction}");
        }
    }
    if args.dirty_every == Some(0) {
        bail!("--dirty-every must be at least 1");
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    for year in args.from..=args.to {
        let spec = Spec {
            years: vec![year],
            records_per_year: args.records_per_year,
            // One stream per year, so a year's file does not depend on the range asked for.
            seed: args.seed ^ (year as u64).wrapping_mul(0x9e37_79b9),
            cny_fraction: args.cny_fraction,
            dirty_every: args.dirty_every,
            country_origin_fraction: args.country_origins,
        };
        let path = match args.format {
            Format::Csv => args.out.join(format!("exports-{year}.csv")),
            Format::Parquet => args.out.join(format!("exports-{year}.parquet")),
        };
        let file =
            File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        match args.format {
            Format::Csv => exdep_synth::write_csv(&spec, &mut BufWriter::new(file))?,
            Format::Parquet => write_parquet(&spec, file)?,
        }
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Typed canonical Parquet: a defective number becomes a null, which ingest rejects.
fn write_parquet(spec: &Spec, file: File) -> Result<()> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("year", DataType::Int32, true),
        Field::new("month", DataType::Int32, true),
        Field::new("province", DataType::Utf8, false),
        Field::new("partner", DataType::Utf8, false),
        Field::new("hs_code", DataType::Utf8, false),
        Field::new("value", DataType::Float64, true),
        Field::new("currency", DataType::Utf8, false),
    ]));
    let (mut year, mut month) = (Int32Builder::new(), Int32Builder::new());
    let (mut province, mut partner, mut hs_code, mut currency) = (
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
    );
    let mut value = Float64Builder::new();
    exdep_synth::generate(spec, |r| {
        year.append_option(r.year.parse().ok());
        month.append_option(r.month.parse().ok());
        province.append_value(&r.province);
        partner.append_value(&r.partner);
        hs_code.append_value(&r.hs_code);
        value.append_option(r.value.parse().ok());
        currency.append_value(&r.currency);
    });
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(year.finish()),
            Arc::new(month.finish()),
            Arc::new(province.finish()),
            Arc::new(partner.finish()),
            Arc::new(hs_code.finish()),
            Arc::new(value.finish()),
            Arc::new(currency.finish()),
        ],
    )?;
    let compression = exdep_core::parse_compression(exdep_core::DEFAULT_COMPRESSION)
        .expect("the default compression is valid");
    let properties = exdep_store::writer_properties(compression);
    let mut writer = ArrowWriter::try_new(file, schema, Some(properties))?;
    writer.write(&batch)?;
    writer.close()?;
    Ok(())
}
