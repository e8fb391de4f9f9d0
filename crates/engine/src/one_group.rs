//! An aggregate function's `Accumulator` (a call without GROUP BY, all rows one group) made
//! of its `GroupsAccumulator`, so that each of exdep's aggregates is written once.

use std::mem::size_of;

use arrow::array::ArrayRef;
use datafusion::common::{Result as DfResult, ScalarValue};
use datafusion::logical_expr::{Accumulator, EmitTo, GroupsAccumulator};

/// A `GroupsAccumulator` that can hold a number of groups before any row reaches them.
pub(crate) trait Groups: GroupsAccumulator {
    /// Makes sure groups `0..total_num_groups` exist.
    fn grow(&mut self, total_num_groups: usize);
}

/// The function without groups: group 0 of its `GroupsAccumulator`.
pub(crate) struct OneGroup<G>(pub(crate) G);

impl<G: Groups> std::fmt::Debug for OneGroup<G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OneGroup")
            .field("bytes", &self.0.size())
            .finish()
    }
}

impl<G: Groups + Sync> Accumulator for OneGroup<G> {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        let rows = values.first().map_or(0, |column| column.len());
        self.0.update_batch(values, &vec![0; rows], None, 1)
    }

    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        self.0.grow(1);
        ScalarValue::try_from_array(&self.0.evaluate(EmitTo::All)?, 0)
    }

    fn size(&self) -> usize {
        size_of::<Self>() + self.0.size()
    }

    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        self.0.grow(1);
        (self.0.state(EmitTo::All)?.iter())
            .map(|column| ScalarValue::try_from_array(column, 0))
            .collect()
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        let rows = states.first().map_or(0, |column| column.len());
        self.0.merge_batch(states, &vec![0; rows], 1)
    }
}
