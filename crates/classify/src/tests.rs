//! The shipped code tables load, and each kind of broken table is refused with its file and
//! line.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use exdep_core::{Location, TableLocations};
use exdep_engine::new_session;

use exdep_core::codes::REGIONS;

use crate::{CodeTables, Error};

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs")
}

fn locations(dir: &Path) -> TableLocations {
    let at = |name: &str| Location::resolve(name, dir).unwrap();
    TableLocations {
        hs_chapters: at("hs_chapters.csv"),
        partner_regions: at("partner_regions.csv"),
        provinces: at("provinces.csv"),
        exchange_rates: at("cny_per_usd.csv"),
        exchange_rates_monthly: None,
        customs_partner_codes: at("customs_partner_codes.csv"),
        comtrade_partner_aliases: at("comtrade_partner_aliases.csv"),
        province_tiles: at("province_tiles.csv"),
    }
}

fn years(list: &[i32]) -> BTreeSet<i32> {
    list.iter().copied().collect()
}

/// Copies the shipped tables to a temporary folder, with `edit` applied to one of them.
fn edited(table: &str, edit: impl Fn(String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "hs_chapters.csv",
        "partner_regions.csv",
        "provinces.csv",
        "cny_per_usd.csv",
    ] {
        let text = std::fs::read_to_string(shipped().join(name)).unwrap();
        let text = if name == table { edit(text) } else { text };
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

async fn load_error(dir: &Path, run_years: &[i32]) -> String {
    let ctx = new_session();
    match CodeTables::load(&ctx, &locations(dir), &years(run_years)).await {
        Ok(_) => panic!("the broken table was accepted"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn the_shipped_tables_are_complete_and_unique() {
    let ctx = new_session();
    let tables = CodeTables::load(&ctx, &locations(&shipped()), &years(&[2017, 2022]))
        .await
        .unwrap();
    // 01-99 without 77; all 249 ISO 3166-1 codes (pycountry cross-checks the set in CI);
    // the 31 mainland provinces.
    assert_eq!(tables.chapters.len(), 98);
    assert_eq!(tables.partner_regions.len(), 249);
    assert_eq!(tables.provinces.len(), 31);
    let used: BTreeSet<&str> = tables
        .partner_regions
        .values()
        .map(String::as_str)
        .collect();
    assert_eq!(
        used,
        REGIONS.iter().copied().collect(),
        "every region has partners"
    );
    for (iso3, region) in [
        ("TUR", "middle_east"),
        ("EGY", "africa"),
        ("RUS", "eastern_europe"),
        ("HKG", "east_asia"),
    ] {
        assert_eq!(tables.partner_regions[iso3], region, "{iso3}");
    }
    assert_eq!(tables.chapters["85"], "technology");
    assert_eq!(tables.chapters["98"], "excluded");
    assert_eq!(tables.cny_per_usd[&2020], 6.8976);
    let cache = tempfile::tempdir().unwrap();
    let cache = Location::resolve(".", cache.path()).unwrap();
    tables.register(&ctx, &cache).await.unwrap();
    let rows = ctx
        .sql("SELECT count(*) FROM partner_regions")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(rows[0].num_rows(), 1);
}

#[tokio::test]
async fn a_duplicate_key_names_both_lines() {
    let dir = edited("partner_regions.csv", |t| t + "USA,Again,north_america\n");
    let error = load_error(dir.path(), &[2020]).await;
    assert!(
        error.contains("partner_regions.csv")
            && error.contains("`USA` is listed twice (first on line"),
        "{error}"
    );
}

#[tokio::test]
async fn a_missing_chapter_is_named() {
    let dir = edited("hs_chapters.csv", |t| t.replace("85,technology\n", ""));
    let error = load_error(dir.path(), &[2020]).await;
    assert!(
        error.contains("hs_chapters.csv") && error.contains("chapters without a category: 85"),
        "{error}"
    );
}

#[tokio::test]
async fn an_unknown_region_or_category_is_refused() {
    let dir = edited("partner_regions.csv", |t| {
        t.replace("DEU,Germany,western_europe", "DEU,Germany,europe")
    });
    let error = load_error(dir.path(), &[2020]).await;
    assert!(error.contains("region `europe` is not one of"), "{error}");
    let dir = edited("hs_chapters.csv", |t| t.replace("85,technology", "85,tech"));
    let error = load_error(dir.path(), &[2020]).await;
    assert!(
        error.contains("line") && error.contains("category `tech`"),
        "{error}"
    );
}

#[tokio::test]
async fn padded_fields_and_wrong_headers_are_refused() {
    let dir = edited("provinces.csv", |t| {
        t.replace("44,Guangdong", "44, Guangdong")
    });
    let error = load_error(dir.path(), &[2020]).await;
    assert!(error.contains("surrounding spaces"), "{error}");
    let dir = edited("provinces.csv", |t| t.replacen("code,name", "id,name", 1));
    let error = load_error(dir.path(), &[2020]).await;
    assert!(
        error.contains("line 1") && error.contains("header must be"),
        "{error}"
    );
}

#[tokio::test]
async fn a_run_year_without_a_rate_is_named() {
    let error = load_error(&shipped(), &[2022, 2023]).await;
    assert!(
        error.contains("cny_per_usd.csv") && error.contains("no CNY per USD rate for year 2023"),
        "{error}"
    );
}

#[tokio::test]
async fn a_missing_table_file_is_named() {
    let dir = edited("provinces.csv", |t| t);
    std::fs::remove_file(dir.path().join("provinces.csv")).unwrap();
    let ctx = new_session();
    let error = CodeTables::load(&ctx, &locations(dir.path()), &years(&[2020]))
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        Error::Store(exdep_store::Error::CodeTableRead { .. })
    ));
    assert!(error.to_string().contains("provinces.csv"), "{error}");
}

/// The report's tile grid: the shipped one places every province on a tile of its own; a
/// broken one is refused with its file and line.
#[tokio::test]
async fn province_tiles_cover_every_province_once() {
    let ctx = new_session();
    let tables = CodeTables::load(&ctx, &locations(&shipped()), &years(&[2017]))
        .await
        .unwrap();
    let tiles_at = |dir: &Path| Location::resolve("province_tiles.csv", dir).unwrap();
    let tiles = crate::load_province_tiles(&ctx, &tiles_at(&shipped()), &tables.provinces)
        .await
        .unwrap();
    assert_eq!(tiles.len(), 31);
    assert_eq!(tiles["44"], (6, 4));

    let shipped_text = std::fs::read_to_string(shipped().join("province_tiles.csv")).unwrap();
    for (edit, expected) in [
        (
            shipped_text.replace("\n44,6,4\n", "\n44,6,3\n"),
            "`45` is on the tile of `44`",
        ),
        (
            shipped_text.replace("\n44,6,4\n", "\n"),
            "no tile for province 44",
        ),
        (
            shipped_text.replace("\n44,6,4\n", "\n44,6,x\n"),
            "column `x` is not 0-31",
        ),
        (
            format!("{shipped_text}99,9,9\n"),
            "`99` is not in the provinces table",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("province_tiles.csv"), edit).unwrap();
        let error = crate::load_province_tiles(&ctx, &tiles_at(dir.path()), &tables.provinces)
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains(expected), "{error}");
        assert!(error.contains("province_tiles.csv"), "{error}");
    }
}
