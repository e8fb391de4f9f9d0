//! Record counts with value sums: the unit of exdep's reconciliation.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How many records fell into a bucket and the sum of their `value` as written in the
/// source (in the source's currency; rows whose value did not parse add nothing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    /// Records in the bucket.
    pub records: u64,
    /// Sum of their values.
    pub value: f64,
}

impl Tally {
    /// Adds another tally to this one.
    pub fn add(&mut self, other: Tally) {
        self.records += other.records;
        self.value += other.value;
    }
}

/// Tallies keyed by a reason or rule code.
pub type TallyByReason = BTreeMap<String, Tally>;

/// The sum of all tallies in a map.
pub fn total(tallies: &TallyByReason) -> Tally {
    tallies.values().fold(Tally::default(), |mut sum, t| {
        sum.add(*t);
        sum
    })
}
