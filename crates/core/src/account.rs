//! The account of every record read: per input file, what it is and what became of its
//! records, composed once from what the one pass over it counted; per year, what
//! classification did with each file's records; and the digest of each code table. The run
//! state and the manifest are made of these.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::config::InputFormat;
use crate::tally::{Tally, TallyByReason, total};

/// An input file as it was read: where it is, its fingerprint, and how it was decoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFile {
    /// The file's URL; rejected records carry it in their `source` column.
    pub file: String,
    /// The format it was read as (told from the header when configured as `auto`).
    pub format: InputFormat,
    /// The text encoding it was decoded from, for text formats.
    pub encoding: Option<String>,
    /// The column the origin (province or reporter) was taken from, where the format has a
    /// choice: customs exports give the firm's registered location (注册地编码) or the goods'
    /// domestic origin (境内货源地编码), whose totals differ.
    pub origin_column: Option<String>,
    /// Its size in bytes.
    pub bytes: u64,
    /// Its entity tag, where the store gives one: with the size and modification time, the
    /// file's fingerprint.
    pub e_tag: Option<String>,
    /// When it was last modified (RFC 3339).
    pub last_modified: String,
}

/// What the checks made of a file's records.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecordCounts {
    /// Records read (data lines for text, rows for Parquet; blank lines are not records).
    pub read: u64,
    /// Records that passed every check, the code tables' membership included (a rule of
    /// classification may still leave them out of the cube).
    pub accepted: Tally,
    /// Records rejected, by reason code.
    pub rejected: TallyByReason,
    /// Records left out by a rule of the source format, by rule code.
    pub excluded: TallyByReason,
    /// Accepted records by year.
    #[serde(deserialize_with = "year_keys")]
    pub accepted_by_year: BTreeMap<i32, u64>,
    /// Every year its records name, in the run's years or not: when the run's years change,
    /// a file that names an added or removed year is read again.
    pub years_seen: BTreeSet<i32>,
    /// Rejected records filed under year 0 in the quarantine: no usable year, or one
    /// outside the run.
    pub rejected_without_year: u64,
}

/// A map keyed by year, read from JSON whose keys are text: serde reads a flattened struct
/// (see [`FileReport`]) through a buffer that keeps a JSON object's keys as strings, which
/// the integer keys' own deserializer would refuse.
fn year_keys<'de, D>(deserializer: D) -> Result<BTreeMap<i32, u64>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let by_text = BTreeMap::<String, u64>::deserialize(deserializer)?;
    by_text
        .into_iter()
        .map(|(year, count)| {
            year.parse()
                .map(|year| (year, count))
                .map_err(|_| serde::de::Error::custom(format!("`{year}` is not a year")))
        })
        .collect()
}

/// What a run did with one input file: the file, and what the checks made of its records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileReport {
    /// The file.
    #[serde(flatten)]
    pub source: SourceFile,
    /// Its records.
    #[serde(flatten)]
    pub records: RecordCounts,
}

/// A listed file that is not read, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedFile {
    /// The file's URL.
    pub file: String,
    /// Why it is not read.
    pub reason: String,
}

/// What classification did with the records of one source file in one year.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceDisposition {
    /// Records that entered the cube.
    pub classified: Tally,
    /// Records left out by a rule (`excluded_hs_chapter`, `partner_is_china`: exports of a
    /// Chinese province to China itself).
    pub excluded: TallyByReason,
}

/// What the cube holds, by year.
pub type CubeReport = BTreeMap<i32, YearCube>;

/// What the cube holds for one year.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct YearCube {
    /// Cube cells: province x partner x category with exports.
    pub cells: u64,
    /// Dispositions of the year's checked records by source file URL.
    pub by_source: BTreeMap<String, SourceDisposition>,
}

/// Where a code table came from and a hash of its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableDigest {
    /// The table's location.
    pub location: String,
    /// SHA-256 of its bytes.
    pub sha256: String,
}

/// The fate of every record of one input file: accepted into the cube, rejected with a
/// reason, or excluded by a rule (of the source format, or of classification).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileReconciliation {
    /// The file.
    #[serde(flatten)]
    pub source: SourceFile,
    /// The years its accepted records fall in.
    pub years: Vec<i32>,
    /// Records read.
    pub read: u64,
    /// Records that entered the cube.
    pub accepted: Tally,
    /// Records rejected, by reason: a field that fails a check (unparseable, out of the
    /// run's years, ...) or a code no table maps.
    pub rejected: TallyByReason,
    /// Records left out by a rule, by rule.
    pub excluded: TallyByReason,
    /// Whether read = accepted + rejected + excluded holds.
    pub balanced: bool,
}

impl FileReconciliation {
    /// The account of `file`, with what classification did with its records in every year
    /// of `cube`.
    pub fn of(file: &FileReport, cube: &CubeReport) -> Self {
        let records = &file.records;
        let mut accepted = Tally::default();
        let mut excluded = records.excluded.clone();
        for disposition in cube
            .values()
            .filter_map(|y| y.by_source.get(&file.source.file))
        {
            accepted.add(disposition.classified);
            for (rule, tally) in &disposition.excluded {
                excluded.entry(rule.clone()).or_default().add(*tally);
            }
        }
        let counted =
            accepted.records + total(&records.rejected).records + total(&excluded).records;
        Self {
            source: file.source.clone(),
            years: records.accepted_by_year.keys().copied().collect(),
            read: records.read,
            accepted,
            rejected: records.rejected.clone(),
            excluded,
            balanced: counted == records.read,
        }
    }

    /// Rejected records over all reasons.
    pub fn rejected_total(&self) -> Tally {
        total(&self.rejected)
    }

    /// Excluded records over all rules.
    pub fn excluded_total(&self) -> Tally {
        total(&self.excluded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_balances_when_every_record_has_one_fate() {
        let tally = |records| Tally {
            records,
            ..Tally::default()
        };
        let report = FileReport {
            source: SourceFile {
                file: "file:///in/a.csv".into(),
                format: InputFormat::CanonicalCsv,
                encoding: Some("UTF-8".into()),
                origin_column: None,
                bytes: 10,
                e_tag: None,
                last_modified: "2026-01-01T00:00:00+00:00".into(),
            },
            records: RecordCounts {
                read: 10,
                accepted: tally(7),
                rejected: BTreeMap::from([("bad_value".into(), tally(2))]),
                excluded: BTreeMap::from([("summary_row".into(), tally(1))]),
                accepted_by_year: BTreeMap::from([(2021, 7)]),
                ..RecordCounts::default()
            },
        };
        let disposition = SourceDisposition {
            classified: tally(6),
            excluded: BTreeMap::from([("partner_is_china".into(), tally(1))]),
        };
        let cube = CubeReport::from([(
            2021,
            YearCube {
                cells: 3,
                by_source: BTreeMap::from([(report.source.file.clone(), disposition)]),
            },
        )]);
        let account = FileReconciliation::of(&report, &cube);
        assert!(account.balanced);
        assert_eq!(account.accepted.records, 6);
        assert_eq!(account.excluded_total().records, 2);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json["file"], "file:///in/a.csv",
            "flat, as the run state has it"
        );
        assert_eq!(json["read"], 10);
    }
}
