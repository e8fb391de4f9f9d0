//! The code tables of the source formats: China Customs partner codes and Comtrade's
//! partner aliases (shipped in `configs/`), and BACI's country code dictionary (shipped with
//! each BACI release). Each is read and checked by [`exdep_core::codes`]'s rules when first
//! needed, then registered as a file-backed table the projections join.

use exdep_core::Location;
use exdep_core::codes::{BaciCountry, CodeRow, ComtradeAlias, CustomsPartner};
use exdep_engine::datafusion::prelude::SessionContext;
use exdep_engine::register_text_table;

use crate::error::Result;
use crate::formats::{COMTRADE_ALIASES, CUSTOMS_PARTNERS};

/// Reads and checks the table of rows `R` at `location`, then registers it as `name`.
async fn register<R: CodeRow>(
    ctx: &SessionContext,
    name: &str,
    location: &Location,
    cache: &Location,
) -> Result<()> {
    exdep_store::read_code_table::<R>(ctx, location).await?;
    Ok(register_text_table(ctx, name, location, R::HEADER, cache).await?)
}

/// `configs/customs_partner_codes.csv` (`code,iso3,name_zh`): unique three-digit codes, each
/// with an ISO3 or empty (not a country: excluded by rule).
pub(crate) async fn register_customs_partners(
    ctx: &SessionContext,
    location: &Location,
    cache: &Location,
) -> Result<()> {
    register::<CustomsPartner>(ctx, CUSTOMS_PARTNERS, location, cache).await
}

/// `configs/comtrade_partner_aliases.csv` (`code,iso3,name`): Comtrade partner codes that are
/// not ISO3 (`S19`), each with the ISO3 it stands for.
pub(crate) async fn register_comtrade_aliases(
    ctx: &SessionContext,
    location: &Location,
    cache: &Location,
) -> Result<()> {
    register::<ComtradeAlias>(ctx, COMTRADE_ALIASES, location, cache).await
}

/// A BACI `country_codes_V*.csv`, registered as table `name`.
pub(crate) async fn register_baci_codes(
    ctx: &SessionContext,
    name: &str,
    location: &Location,
    cache: &Location,
) -> Result<()> {
    register::<BaciCountry>(ctx, name, location, cache).await
}
