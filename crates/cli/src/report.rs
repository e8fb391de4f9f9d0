//! `exdep report`: the study's figures from the published tables, as one HTML file.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use exdep_core::Config;
use exdep_engine::new_session;

#[derive(Args)]
pub struct ReportArgs {
    /// The pipeline config (TOML) whose output holds the tables.
    #[arg(long)]
    config: PathBuf,
    /// Where to write the page.
    #[arg(long, default_value = "report.html")]
    output: PathBuf,
    /// The province shown beside the nation (a code such as `44`); default: the largest
    /// exporter in the last year.
    #[arg(long, value_name = "CODE")]
    province: Option<String>,
    /// The years shown, `A-B` or one year; default: every published year.
    #[arg(long, value_name = "A-B")]
    years: Option<String>,
}

/// `A-B` or `A` as a span of years.
fn year_span(text: &str) -> Result<(i32, i32)> {
    let (from, to) = text.split_once('-').unwrap_or((text, text));
    let year = |part: &str| {
        part.trim()
            .parse::<i32>()
            .with_context(|| format!("--years {text}: `{part}` is not a year (expected A-B)"))
    };
    let (from, to) = (year(from)?, year(to)?);
    if from > to {
        bail!("--years {text}: the first year is after the last");
    }
    Ok((from, to))
}

pub async fn report(args: ReportArgs) -> Result<()> {
    let config = Config::load(&args.config)?;
    let ctx = new_session();
    exdep_engine::prepare_session(&ctx, &config)?;
    let options = exdep_report::ReportOptions {
        province: args.province,
        years: args.years.as_deref().map(year_span).transpose()?,
    };
    let report = exdep_report::build(&ctx, &config, &options).await?;
    std::fs::write(&args.output, &report.html)
        .with_context(|| format!("writing {}", args.output.display()))?;
    println!(
        "{}: {} figures, {} to {}, province {}",
        args.output.display(),
        report.figures,
        report.years.first().copied().unwrap_or_default(),
        report.years.last().copied().unwrap_or_default(),
        report.province
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::year_span;

    #[test]
    fn year_spans() {
        assert_eq!(year_span("2017-2022").unwrap(), (2017, 2022));
        assert_eq!(year_span("2020").unwrap(), (2020, 2020));
        assert!(year_span("2022-2017").is_err());
        assert!(year_span("x-2017").is_err());
    }
}
