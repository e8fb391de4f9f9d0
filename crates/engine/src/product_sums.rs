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
//! appends a record to one of a few hundred partitions by its group and product's hash,
//! and only when the sums are taken sums each partition's records in that partition's
//! table, so that the memory it touches at any moment stays in cache (see
//! [`ProductSumGroups`]).
//!
//! A plain aggregate function, registered by name in every session exdep makes and in
//! exdep's scheduler and executors ([`crate::product_margin_functions`]), so the plan runs
//! embedded and on a cluster alike; its state between the two phases of an aggregation is
//! its result.

use std::hash::{BuildHasherDefault, Hasher};
use std::mem::size_of;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int32Array, Int64Array};
use arrow::array::{Decimal128Array, ListArray, StructArray};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Decimal128Type, Field, FieldRef, Fields, Int32Type, Int64Type};
use datafusion::common::{HashMap, Result as DfResult, exec_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility,
};

use crate::one_group::{Groups, OneGroup};
use crate::product_growth::PRECISION;

/// The function's name.
pub const PRODUCT_SUMS: &str = "exdep_product_sums";

/// `exdep_product_sums(product, value)` over records (a product number, or null for a
/// record without one, which the function skips; the record's value as an exact decimal,
/// or null, which counts and adds nothing): a list with one struct per product of the
/// group, in no particular order, with the product (`product`), its records (`records`) and
/// the exact sum of their values (`value`).
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
        Field::new("records", DataType::Int64, false),
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

/// The bits of a record's hash that choose its partition: 256 partitions, whose ends
/// stay in cache while records are appended to them.
const PARTITION_BITS: u32 = 8;

/// The records a chunk of a partition's pending records holds.
const CHUNK_RECORDS: usize = 1024;

/// A record not yet summed: its group and product ([`key_of`]) and its value, an `i128`
/// as two words so that a record takes 24 bytes, not 32.
#[derive(Debug, Clone, Copy)]
struct Pending {
    key: u64,
    value: [u64; 2],
}

impl Pending {
    fn new(key: u64, value: i128) -> Pending {
        let value = value as u128;
        Pending {
            key,
            value: [value as u64, (value >> 64) as u64],
        }
    }

    fn value(&self) -> i128 {
        (u128::from(self.value[1]) << 64 | u128::from(self.value[0])) as i128
    }
}

/// A group and product as one `u64`: the group in the high half.
fn key_of(group: usize, product: i32) -> u64 {
    ((group as u64) << 32) | u64::from(product as u32)
}

/// The group and product of a key (the inverse of [`key_of`]).
fn parts_of(key: u64) -> (usize, i32) {
    ((key >> 32) as usize, key as u32 as i32)
}

/// A key's hash: a multiplication that spreads every bit of the key into the high bits,
/// which choose the partition, folded so that the low bits, which the tables' buckets
/// use, depend on them too.
fn hash_of(key: u64) -> u64 {
    let spread = key.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    spread ^ (spread >> 29)
}

/// The hasher of the partitions' tables, whose keys were chosen by [`hash_of`] already.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, _bytes: &[u8]) {
        unreachable!("the tables hash `u64` keys only")
    }

    fn write_u64(&mut self, key: u64) {
        self.0 = hash_of(key);
    }
}

/// A product's records in a group and the exact sum of their values.
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    records: u64,
    value: i128,
}

impl Sums {
    /// Adds `records` records whose values sum to `value`.
    fn add(&mut self, records: u64, value: i128) -> DfResult<()> {
        let (Some(records), Some(value)) = (
            self.records.checked_add(records),
            self.value.checked_add(value),
        ) else {
            return exec_err!(
                "{PRODUCT_SUMS}: a product's sum in a group overflows ({PRECISION} digits)"
            );
        };
        *self = Sums { records, value };
        Ok(())
    }
}

/// One partition of the groups' products: the sums of the keys that hash to it, and the
/// records that came since, in chunks (a vector that doubled would copy them, and hold
/// twice the memory while it did).
#[derive(Default)]
struct Partition {
    sums: HashMap<u64, Sums, BuildHasherDefault<KeyHasher>>,
    pending: Vec<Vec<Pending>>,
}

impl Partition {
    fn push(&mut self, record: Pending) {
        match self.pending.last_mut() {
            Some(chunk) if chunk.len() < CHUNK_RECORDS => chunk.push(record),
            _ => {
                let mut chunk = Vec::with_capacity(CHUNK_RECORDS);
                chunk.push(record);
                self.pending.push(chunk);
            }
        }
    }

    /// Adds the pending records to the sums.
    fn sum_pending(&mut self) -> DfResult<()> {
        for chunk in std::mem::take(&mut self.pending) {
            for record in chunk {
                (self.sums.entry(record.key).or_default()).add(1, record.value())?;
            }
        }
        Ok(())
    }

    /// The memory the partition holds.
    fn size(&self) -> usize {
        self.sums.allocation_size()
            + (self.pending.iter())
                .map(|chunk| chunk.capacity() * size_of::<Pending>())
                .sum::<usize>()
            + self.pending.capacity() * size_of::<Vec<Pending>>()
    }
}

/// Every group's sums by product, kept by partition of their group and product as a
/// radix-partitioned aggregation does: a record is appended to its partition's pending
/// records (at each of a few hundred partitions' ends, which stay in cache), and only when
/// the sums are taken does each partition sum its records into its table: a table of the
/// few-hundredth part of the products, which stays in cache while it is built. Summed into
/// one table of every group's products, or into the partitions' tables as records come,
/// nearly every record would cost a miss in main memory; this way a record costs 24
/// bytes until the sums are taken. Sums merged from another accumulator's state go to the
/// tables directly: they are already one per group and product.
struct ProductSumGroups {
    scale: i8,
    partitions: Vec<Partition>,
    /// How many groups there are.
    groups: usize,
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
            partitions: (0..1 << PARTITION_BITS)
                .map(|_| Partition::default())
                .collect(),
            groups: 0,
        }
    }

    /// The partition of `key`.
    fn partition(&mut self, key: u64) -> &mut Partition {
        &mut self.partitions[(hash_of(key) >> (64 - PARTITION_BITS)) as usize]
    }

    /// The lists of the groups `emit_to` names; the groups after them, if any, are
    /// renumbered from 0.
    fn take(&mut self, emit_to: EmitTo) -> DfResult<ArrayRef> {
        let taken = match emit_to {
            EmitTo::All => self.groups,
            EmitTo::First(n) => n.min(self.groups),
        };
        let mut counts = vec![0usize; taken + 1];
        for partition in &mut self.partitions {
            partition.sum_pending()?;
            for key in partition.sums.keys() {
                let (group, _) = parts_of(*key);
                if group < taken {
                    counts[group + 1] += 1;
                }
            }
        }
        let mut offsets = Vec::with_capacity(taken + 1);
        let mut end = 0usize;
        for count in &counts {
            end += count;
            let Ok(offset) = i32::try_from(end) else {
                return exec_err!("{PRODUCT_SUMS}: more than 2^31 products in one batch");
            };
            offsets.push(offset);
        }
        // Each group's next free place, from its offset on.
        let mut next: Vec<usize> = offsets[..taken].iter().map(|&at| at as usize).collect();
        let mut products = vec![0i32; end];
        let mut records = vec![0i64; end];
        let mut values = vec![0i128; end];
        for partition in &mut self.partitions {
            let kept = partition.sums.len();
            let mut later = HashMap::with_capacity_and_hasher(
                if taken < self.groups { kept } else { 0 },
                BuildHasherDefault::default(),
            );
            for (key, sums) in partition.sums.drain() {
                let (group, product) = parts_of(key);
                if group >= taken {
                    later.insert(key_of(group - taken, product), sums);
                    continue;
                }
                let at = next[group];
                next[group] += 1;
                let Ok(count) = i64::try_from(sums.records) else {
                    return exec_err!("{PRODUCT_SUMS}: more than 2^63 records of one product");
                };
                (products[at], records[at], values[at]) = (product, count, sums.value);
            }
            partition.sums = later;
        }
        self.groups -= taken;
        let values =
            Decimal128Array::from(values).with_precision_and_scale(PRECISION, self.scale)?;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from(products)),
            Arc::new(Int64Array::from(records)),
            Arc::new(values),
        ];
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
            let key = key_of(group, products.value(row));
            self.partition(key).push(Pending::new(key, value));
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
        let records = items.column(1).as_primitive::<Int64Type>();
        let amounts = items.column(2).as_primitive::<Decimal128Type>();
        let offsets = lists.value_offsets();
        for (row, &group) in group_indices.iter().enumerate() {
            for at in offsets[row] as usize..offsets[row + 1] as usize {
                let Ok(count) = u64::try_from(records.value(at)) else {
                    return exec_err!("{PRODUCT_SUMS}: a negative count of records in its state");
                };
                let key = key_of(group, products.value(at));
                (self.partition(key).sums.entry(key).or_default()).add(count, amounts.value(at))?;
            }
        }
        Ok(())
    }

    fn size(&self) -> usize {
        self.partitions.iter().map(Partition::size).sum::<usize>()
            + self.partitions.capacity() * size_of::<Partition>()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    const SCALE: i8 = 2;

    /// Each group's sums by product, as `group -> product -> (records, value)`.
    type Expected = BTreeMap<usize, BTreeMap<i32, (i64, i128)>>;

    /// The lists `array` holds, as [`Expected`], group numbers from `first`.
    fn lists_of(array: &ArrayRef, first: usize) -> Expected {
        let lists = array.as_list::<i32>();
        let items = lists.values().as_struct();
        let products = items.column(0).as_primitive::<Int32Type>();
        let records = items.column(1).as_primitive::<Int64Type>();
        let values = items.column(2).as_primitive::<Decimal128Type>();
        let mut groups = Expected::new();
        for row in 0..lists.len() {
            let offsets = lists.value_offsets();
            for at in offsets[row] as usize..offsets[row + 1] as usize {
                let product = products.value(at);
                let previous = groups
                    .entry(first + row)
                    .or_default()
                    .insert(product, (records.value(at), values.value(at)));
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
                (group, product, i128::from(n % 1000) * 10i128.pow(20) + 3)
            })
            .collect()
    }

    fn expected(records: &[(usize, i32, i128)]) -> Expected {
        let mut expected = Expected::new();
        for &(group, product, value) in records {
            let sums = (expected.entry(group).or_default())
                .entry(product)
                .or_default();
            *sums = (sums.0 + 1, sums.1 + value);
        }
        expected
    }

    fn accumulate(records: &[(usize, i32, i128)]) -> ProductSumGroups {
        let mut sums = ProductSumGroups::of_scale(SCALE);
        for batch in records.chunks(1000) {
            let products: Vec<Option<i32>> = batch.iter().map(|r| Some(r.1)).collect();
            let values: Vec<Option<i128>> = batch.iter().map(|r| Some(r.2)).collect();
            let groups: Vec<usize> = batch.iter().map(|r| r.0).collect();
            let total = groups.iter().max().map_or(0, |group| group + 1);
            sums.update_batch(&arrays(&products, &values), &groups, None, total)
                .unwrap();
        }
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
    fn rows_without_a_product_or_filtered_out_are_skipped_and_a_null_value_adds_nothing() {
        let sums = ProductSumGroups::of_scale(SCALE);
        let values = arrays(
            &[Some(1), None, Some(1), Some(2)],
            &[Some(5), Some(7), None, Some(9)],
        );
        let keep = BooleanArray::from(vec![true, true, true, false]);
        let state = sums.convert_to_state(&values, Some(&keep)).unwrap();
        let groups = lists_of(&state[0], 0);
        let want = Expected::from([
            (0, BTreeMap::from([(1, (1, 5))])),
            (2, BTreeMap::from([(1, (1, 0))])),
        ]);
        assert_eq!(groups, want);
    }
}
