//! `exdep_product_sums`: an aggregate function that sums a group's records by product, for
//! a file pass that groups its records by cell and needs their sums by cell and product
//! as well (`product-margins = true`).
//!
//! Grouped by cell, product and the fate of rejected records, DataFusion's grouping hashes
//! and compares three columns per record into a table of several hundred thousand groups a
//! file, far larger than the processor's caches, and so does any one hash table keyed by
//! cell and product: a record costs a miss or two in main memory. Grouped by cell and fate
//! alone, as without product margins, the grouping table stays small; this function then
//! sums each group's records by product the way a radix-partitioned aggregation does: it
//! appends a record to a partition of its group's (256 groups each), and only when the
//! sums are taken sums each partition's records in a table of their own, so that the
//! memory it touches at any moment stays in cache (see [`ProductSumGroups`]).
//!
//! A plain aggregate function, registered by name in every session exdep makes and in
//! exdep's scheduler and executors ([`crate::product_margin_functions`]), so the plan runs
//! embedded and on a cluster alike; its state between the two phases of an aggregation is
//! its result.

use std::hash::{BuildHasherDefault, Hasher};
use std::mem::size_of;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int32Array};
use arrow::array::{Decimal128Array, ListArray, StructArray};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Decimal128Type, Field, FieldRef, Fields, Int32Type};
use datafusion::common::{HashMap, Result as DfResult, exec_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility,
};

use crate::chunked::Chunked;
use crate::one_group::{Groups, OneGroup};
use crate::product_growth::PRECISION;

/// The function's name.
pub const PRODUCT_SUMS: &str = "exdep_product_sums";

/// `exdep_product_sums(product, value)` over records (a product number, or null for a
/// record without one, which the function skips; the record's value as an exact decimal,
/// or null, which counts and adds nothing): a list with one struct per product of the
/// group, in no particular order, with the product (`product`) and the exact sum of its
/// records' values (`value`).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ProductSums {
    signature: Signature,
}

/// The function, for every session and cluster process to register.
pub(crate) fn product_sums_function() -> Arc<AggregateUDF> {
    let signature = Signature::user_defined(Volatility::Immutable);
    Arc::new(AggregateUDF::from(ProductSums { signature }))
}

/// The scale of the values, which the sums keep.
fn scale_of(arg_types: &[DataType]) -> DfResult<i8> {
    match arg_types {
        [_, DataType::Decimal128(_, scale)] => Ok(*scale),
        _ => plan_err!(
            "{PRODUCT_SUMS} takes (product, value) with the value as a decimal, not \
             {arg_types:?}"
        ),
    }
}

/// The struct of a product's sums.
fn sum_fields(scale: i8) -> Fields {
    vec![
        Field::new("product", DataType::Int32, false),
        Field::new("value", DataType::Decimal128(PRECISION, scale), false),
    ]
    .into()
}

fn item_field(scale: i8) -> FieldRef {
    Arc::new(Field::new_list_field(
        DataType::Struct(sum_fields(scale)),
        false,
    ))
}

impl AggregateUDFImpl for ProductSums {
    fn name(&self) -> &str {
        PRODUCT_SUMS
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        match arg_types {
            [_, DataType::Decimal128(_, scale)] => Ok(vec![
                DataType::Int32,
                DataType::Decimal128(PRECISION, *scale),
            ]),
            [_, other] => plan_err!("{PRODUCT_SUMS} sums exact decimals, not {other}"),
            _ => plan_err!("{PRODUCT_SUMS} takes 2 arguments (product, value)"),
        }
    }

    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::List(item_field(scale_of(arg_types)?)))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> DfResult<Vec<FieldRef>> {
        let types: Vec<DataType> = (args.input_fields.iter())
            .map(|field| field.data_type().clone())
            .collect();
        Ok(vec![Arc::new(Field::new_list(
            format!("{}[sums]", args.name),
            item_field(scale_of(&types)?).as_ref().clone(),
            false,
        ))])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        Ok(Box::new(OneGroup(ProductSumGroups::new(&args)?)))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> DfResult<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(ProductSumGroups::new(&args)?))
    }
}

/// The bits of a group's number within its partition: a partition holds 256 consecutive
/// groups, so the partitions' ends (about 90 for a file of 22,000 cells) stay in cache
/// while records are appended to them, a partition's table (about 9,000 products) stays
/// in cache while it is summed, and a partition's sums come out in their groups' order.
/// (With 64 groups a partition, about 350 partitions, the 20M benchmark's product run took
/// more CPU in 6 of 9 alternating pairs.)
const GROUP_BITS: u32 = 8;

/// The groups a partition holds.
const PARTITION_GROUPS: usize = 1 << GROUP_BITS;

/// The bits of a key ([`key_of`]) that hold its product: a product is a number from 0 to
/// 2^24 - 1 (`exdep_product_code`'s are below 2^20).
const PRODUCT_KEY_BITS: u32 = 24;

// A key holds a group's place in its partition above its product.
const _: () = assert!(GROUP_BITS + PRODUCT_KEY_BITS <= u32::BITS);

/// A record not yet summed, in 12 bytes: its key ([`key_of`]) and its value. A value that
/// does not fit 64 bits (at scale 10, a record of more than 922 million) is summed into its
/// partition's table of merged sums as it comes instead: with the 16 bytes of an `i128`
/// every record took 24 bytes, and writing the records to memory was most of what
/// appending them cost.
#[derive(Clone, Copy)]
#[repr(C, packed(4))]
struct Pending {
    key: u32,
    value: i64,
}

/// The key of `group` and `product` in the group's partition: the group's place in its
/// partition (`group % PARTITION_GROUPS`) above the product, as one `u32`; an error for a
/// product the keys cannot hold (a number from 0 to 2^[`PRODUCT_KEY_BITS`] - 1).
fn key_of(group: usize, product: i32) -> DfResult<u32> {
    match u32::try_from(product) {
        Ok(number) if number < 1 << PRODUCT_KEY_BITS => {
            Ok(((group % PARTITION_GROUPS) as u32) << PRODUCT_KEY_BITS | number)
        }
        _ => exec_err!(
            "{PRODUCT_SUMS}: product {product} is not a number from 0 to 2^{PRODUCT_KEY_BITS} - 1"
        ),
    }
}

/// The group's place in its partition and the product of a key (the inverse of [`key_of`]).
fn parts_of(key: u32) -> (usize, i32) {
    (
        (key >> PRODUCT_KEY_BITS) as usize,
        (key & ((1 << PRODUCT_KEY_BITS) - 1)) as i32,
    )
}

/// The hasher of the sums' table: a multiplication that spreads every bit of the key into
/// the high bits, folded so that the low bits, which the table's buckets use, depend on
/// them too.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, _bytes: &[u8]) {
        unreachable!("the table hashes `u32` keys only")
    }

    fn write_u32(&mut self, key: u32) {
        let spread = u64::from(key).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = spread ^ (spread >> 29);
    }
}

/// Sums by key (a group's place in its partition, and product).
type SumTable = HashMap<u32, Sum, BuildHasherDefault<KeyHasher>>;

/// The exact sum of a product's records in a group.
#[derive(Debug, Clone, Copy, Default)]
struct Sum(i128);

impl Sum {
    fn add(&mut self, value: i128) -> DfResult<()> {
        let Some(sum) = self.0.checked_add(value) else {
            return exec_err!(
                "{PRODUCT_SUMS}: a product's sum in a group overflows ({PRECISION} digits)"
            );
        };
        self.0 = sum;
        Ok(())
    }
}

/// One partition of the groups: the sums merged from other accumulators' states and of
/// records whose values need more than 64 bits, and the other records that came.
#[derive(Default)]
struct Partition {
    merged: SumTable,
    pending: Chunked<Pending>,
}

impl Partition {
    /// Adds the partition's merged sums and pending records to `table`, emptying it.
    fn sum_into(&mut self, table: &mut SumTable) -> DfResult<()> {
        for (key, sum) in std::mem::take(&mut self.merged) {
            (table.entry(key).or_default()).add(sum.0)?;
        }
        for record in std::mem::take(&mut self.pending) {
            let Pending { key, value } = record;
            (table.entry(key).or_default()).add(i128::from(value))?;
        }
        Ok(())
    }

    /// The memory the partition holds.
    fn size(&self) -> usize {
        self.merged.allocation_size() + self.pending.size()
    }
}

/// Every group's sums by product, kept as a radix-partitioned aggregation does: a record
/// is appended to the pending records of its group's partition (at the partitions' ends,
/// which stay in cache), and only when the sums are taken are each partition's records
/// summed, in one table reused from partition to partition: a table of some thousands of
/// products, which stays in cache while it is built. Summed into one table of every
/// group's products, or into the partitions' tables as records come, nearly every record
/// would cost a miss in main memory; this way a record costs 12 bytes until the sums are
/// taken. Sums merged from another accumulator's state, already one per group and
/// product, and the rare record whose value needs more than 64 bits wait in their
/// partition's table of merged sums.
struct ProductSumGroups {
    scale: i8,
    /// Partition `p` holds groups `p * PARTITION_GROUPS` to `(p + 1) * PARTITION_GROUPS - 1`.
    partitions: Vec<Partition>,
    /// How many groups there are.
    groups: usize,
    /// The table a partition is summed in, empty between two takes.
    table: SumTable,
}

impl ProductSumGroups {
    fn new(args: &AccumulatorArgs) -> DfResult<ProductSumGroups> {
        let types: Vec<DataType> = (args.expr_fields.iter())
            .map(|field| field.data_type().clone())
            .collect();
        Ok(ProductSumGroups::of_scale(scale_of(&types)?))
    }

    fn of_scale(scale: i8) -> ProductSumGroups {
        ProductSumGroups {
            scale,
            partitions: Vec::new(),
            groups: 0,
            table: SumTable::default(),
        }
    }

    /// The partition of `group`.
    fn partition(&mut self, group: usize) -> &mut Partition {
        &mut self.partitions[group >> GROUP_BITS]
    }

    /// The lists of the groups `emit_to` names; the groups after them, if any, are
    /// renumbered from 0. Each partition's sums are counted by group in its table and
    /// then placed, so the lists come out in their groups' order with no sort.
    fn take(&mut self, emit_to: EmitTo) -> DfResult<ArrayRef> {
        let taken = match emit_to {
            EmitTo::All => self.groups,
            EmitTo::First(n) => n.min(self.groups),
        };
        let mut offsets = Vec::with_capacity(taken + 1);
        offsets.push(0i32);
        let (mut products, mut values) = (Vec::new(), Vec::new());
        // The sums of groups after the taken ones, renumbered.
        let mut later = Vec::new();
        let mut table = std::mem::take(&mut self.table);
        for (index, partition) in self.partitions.iter_mut().enumerate() {
            partition.sum_into(&mut table)?;
            let first = index * PARTITION_GROUPS;
            let emitted = taken.saturating_sub(first).min(PARTITION_GROUPS);
            let mut counts = [0usize; PARTITION_GROUPS];
            for key in table.keys() {
                counts[parts_of(*key).0] += 1;
            }
            // Each emitted group's next free place in the lists' items.
            let mut next = [0usize; PARTITION_GROUPS];
            let mut end = products.len();
            for (group, count) in counts.iter().take(emitted).enumerate() {
                next[group] = end;
                end += count;
                let Ok(offset) = i32::try_from(end) else {
                    return exec_err!("{PRODUCT_SUMS}: more than 2^31 products in one batch");
                };
                offsets.push(offset);
            }
            products.resize(end, 0i32);
            values.resize(end, 0i128);
            for (key, sum) in table.drain() {
                let (place, product) = parts_of(key);
                let group = first + place;
                if group >= taken {
                    later.push((group - taken, product, sum));
                    continue;
                }
                let at = &mut next[place];
                (products[*at], values[*at]) = (product, sum.0);
                *at += 1;
            }
        }
        self.table = table;
        self.groups -= taken;
        self.partitions.clear();
        self.grow(self.groups);
        for (group, product, sum) in later {
            let key = key_of(group, product)?;
            self.partition(group).merged.insert(key, sum);
        }
        let values =
            Decimal128Array::from(values).with_precision_and_scale(PRECISION, self.scale)?;
        let columns: Vec<ArrayRef> = vec![Arc::new(Int32Array::from(products)), Arc::new(values)];
        let items = StructArray::try_new(sum_fields(self.scale), columns, None)?;
        Ok(Arc::new(ListArray::try_new(
            item_field(self.scale),
            OffsetBuffer::new(offsets.into()),
            Arc::new(items),
            None,
        )?))
    }
}

impl Groups for ProductSumGroups {
    fn grow(&mut self, total_num_groups: usize) {
        self.groups = self.groups.max(total_num_groups);
        let partitions = self.groups.div_ceil(PARTITION_GROUPS);
        if self.partitions.len() < partitions {
            self.partitions.resize_with(partitions, Partition::default);
        }
    }
}

impl GroupsAccumulator for ProductSumGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> DfResult<()> {
        self.grow(total_num_groups);
        let [products, amounts] = values else {
            return exec_err!("{PRODUCT_SUMS} takes 2 arguments");
        };
        let products = products.as_primitive::<Int32Type>();
        let amounts = amounts.as_primitive::<Decimal128Type>();
        for (row, &group) in group_indices.iter().enumerate() {
            if products.is_null(row) || opt_filter.is_some_and(|keep| !keep.value(row)) {
                continue;
            }
            let value = if amounts.is_valid(row) {
                amounts.value(row)
            } else {
                0
            };
            let key = key_of(group, products.value(row))?;
            let partition = self.partition(group);
            match i64::try_from(value) {
                Ok(value) => partition.pending.push(Pending { key, value }),
                Err(_) => (partition.merged.entry(key).or_default()).add(value)?,
            }
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> DfResult<ArrayRef> {
        self.take(emit_to)
    }

    fn state(&mut self, emit_to: EmitTo) -> DfResult<Vec<ArrayRef>> {
        Ok(vec![self.take(emit_to)?])
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> DfResult<Vec<ArrayRef>> {
        // Each row its own group.
        let mut rows = ProductSumGroups::of_scale(self.scale);
        let groups: Vec<usize> = (0..values.first().map_or(0, |column| column.len())).collect();
        rows.update_batch(values, &groups, opt_filter, groups.len())?;
        Ok(vec![rows.take(EmitTo::All)?])
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> DfResult<()> {
        self.grow(total_num_groups);
        let [lists] = values else {
            return exec_err!("{PRODUCT_SUMS}'s state is one list");
        };
        let lists = lists.as_list::<i32>();
        let items = lists.values().as_struct();
        let products = items.column(0).as_primitive::<Int32Type>();
        let amounts = items.column(1).as_primitive::<Decimal128Type>();
        let offsets = lists.value_offsets();
        for (row, &group) in group_indices.iter().enumerate() {
            for at in offsets[row] as usize..offsets[row + 1] as usize {
                let key = key_of(group, products.value(at))?;
                let merged = &mut self.partition(group).merged;
                (merged.entry(key).or_default()).add(amounts.value(at))?;
            }
        }
        Ok(())
    }

    fn size(&self) -> usize {
        self.partitions.iter().map(Partition::size).sum::<usize>()
            + self.partitions.capacity() * size_of::<Partition>()
            + self.table.allocation_size()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    const SCALE: i8 = 2;

    /// Each group's sums by product, as `group -> product -> value`.
    type Expected = BTreeMap<usize, BTreeMap<i32, i128>>;

    /// The lists `array` holds, as [`Expected`], group numbers from `first`.
    fn lists_of(array: &ArrayRef, first: usize) -> Expected {
        let lists = array.as_list::<i32>();
        let items = lists.values().as_struct();
        let products = items.column(0).as_primitive::<Int32Type>();
        let values = items.column(1).as_primitive::<Decimal128Type>();
        let mut groups = Expected::new();
        for row in 0..lists.len() {
            let offsets = lists.value_offsets();
            for at in offsets[row] as usize..offsets[row + 1] as usize {
                let product = products.value(at);
                let previous = groups
                    .entry(first + row)
                    .or_default()
                    .insert(product, values.value(at));
                assert!(previous.is_none(), "product {product} twice in group {row}");
            }
        }
        groups
    }

    fn arrays(products: &[Option<i32>], values: &[Option<i128>]) -> Vec<ArrayRef> {
        let values = Decimal128Array::from(values.to_vec())
            .with_precision_and_scale(PRECISION, SCALE)
            .unwrap();
        vec![
            Arc::new(Int32Array::from(products.to_vec())),
            Arc::new(values),
        ]
    }

    /// Records over many groups and products, with repeats far apart: (group, product,
    /// value), in batches of 1000.
    fn records() -> Vec<(usize, i32, i128)> {
        (0..20_000)
            .map(|n: i64| {
                let group = (n * 7919 % 300) as usize;
                let product = (n * 104_729 % 97) as i32 + 10_000;
                // Values within 64 bits and, every third record, beyond.
                let scale = if n % 3 == 0 { 20 } else { 6 };
                (group, product, i128::from(n % 1000) * 10i128.pow(scale) + 3)
            })
            .collect()
    }

    fn expected(records: &[(usize, i32, i128)]) -> Expected {
        let mut expected = Expected::new();
        for &(group, product, value) in records {
            *(expected.entry(group).or_default())
                .entry(product)
                .or_default() += value;
        }
        expected
    }

    /// Adds `records` to `sums` in batches of 1000.
    fn add(sums: &mut ProductSumGroups, records: &[(usize, i32, i128)]) {
        for batch in records.chunks(1000) {
            let products: Vec<Option<i32>> = batch.iter().map(|r| Some(r.1)).collect();
            let values: Vec<Option<i128>> = batch.iter().map(|r| Some(r.2)).collect();
            let groups: Vec<usize> = batch.iter().map(|r| r.0).collect();
            let total = groups.iter().max().map_or(0, |group| group + 1);
            sums.update_batch(&arrays(&products, &values), &groups, None, total)
                .unwrap();
        }
    }

    fn accumulate(records: &[(usize, i32, i128)]) -> ProductSumGroups {
        let mut sums = ProductSumGroups::of_scale(SCALE);
        add(&mut sums, records);
        sums
    }

    #[test]
    fn a_groups_records_are_summed_by_product_exactly() {
        let records = records();
        let mut sums = accumulate(&records);
        assert_eq!(
            lists_of(&sums.evaluate(EmitTo::All).unwrap(), 0),
            expected(&records)
        );
        assert_eq!(
            sums.evaluate(EmitTo::All).unwrap().len(),
            0,
            "nothing is left"
        );
    }

    #[test]
    fn the_first_groups_are_taken_and_the_rest_renumbered() {
        let records = records();
        let mut sums = accumulate(&records);
        let all = expected(&records);
        let first = lists_of(&sums.evaluate(EmitTo::First(100)).unwrap(), 0);
        let rest = lists_of(&sums.evaluate(EmitTo::All).unwrap(), 100);
        let (want_first, want_rest): (Expected, Expected) =
            all.into_iter().partition(|(group, _)| *group < 100);
        assert_eq!((first, rest), (want_first, want_rest));
    }

    #[test]
    fn records_after_a_partial_take_join_their_renumbered_groups() {
        let records = records();
        let mut sums = accumulate(&records);
        sums.evaluate(EmitTo::First(130)).unwrap();
        // Group g of the rest was group g + 130; more records come for some of them.
        let more: Vec<(usize, i32, i128)> = records.iter().map(|r| (r.0 % 170, r.1, 1)).collect();
        add(&mut sums, &more);
        let renumbered: Vec<(usize, i32, i128)> = (records.iter())
            .filter(|r| r.0 >= 130)
            .map(|r| (r.0 - 130, r.1, r.2))
            .chain(more)
            .collect();
        assert_eq!(
            lists_of(&sums.evaluate(EmitTo::All).unwrap(), 0),
            expected(&renumbered)
        );
    }

    #[test]
    fn merged_states_sum_like_the_records_they_came_from() {
        let records = records();
        let (one, other) = records.split_at(records.len() / 3);
        let mut merged = accumulate(one);
        let state = accumulate(other).state(EmitTo::All).unwrap();
        let groups: Vec<usize> = (0..state[0].len()).collect();
        merged.merge_batch(&state, &groups, groups.len()).unwrap();
        assert_eq!(
            lists_of(&merged.evaluate(EmitTo::All).unwrap(), 0),
            expected(&records)
        );
    }

    #[test]
    fn a_product_the_keys_cannot_hold_is_refused() {
        let mut sums = ProductSumGroups::of_scale(SCALE);
        for product in [-1, 1 << PRODUCT_KEY_BITS] {
            let error = sums
                .update_batch(&arrays(&[Some(product)], &[Some(1)]), &[0], None, 1)
                .unwrap_err();
            assert!(error.to_string().contains(&product.to_string()), "{error}");
        }
        assert!(
            (sums.update_batch(
                &arrays(&[Some((1 << PRODUCT_KEY_BITS) - 1)], &[Some(1)]),
                &[0],
                None,
                1
            ))
            .is_ok()
        );
    }

    #[test]
    fn rows_without_a_product_or_filtered_out_are_skipped_and_a_null_value_adds_nothing() {
        let sums = ProductSumGroups::of_scale(SCALE);
        let values = arrays(
            &[Some(1), None, Some(1), Some(2)],
            &[Some(5), Some(7), None, Some(9)],
        );
        let keep = BooleanArray::from(vec![true, true, true, false]);
        let state = sums.convert_to_state(&values, Some(&keep)).unwrap();
        let groups = lists_of(&state[0], 0);
        let want = Expected::from([(0, BTreeMap::from([(1, 5)])), (2, BTreeMap::from([(1, 0)]))]);
        assert_eq!(groups, want);
    }
}
