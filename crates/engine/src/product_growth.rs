//! `exdep_product_growth`: an aggregate function that turns the partial product cubes'
//! rows of a group into each place's growth split over its products, and its
//! Hummels-Klenow sums, in one pass over the rows and with exact sums.
//!
//! `product_margins` needs, per origin, partner and category (a *place*) and year t, each
//! product's exports in t and t-1 (summed over the files that hold them), and for the
//! Hummels-Klenow margins each product's national exports in t (summed over the
//! provinces). As SQL that is a sum of the partial cubes by key, a national sum beside it,
//! a full outer join of each year with the previous one and a join with the national
//! products: several passes over millions of product keys, each of them hashed again. Every
//! one of those is local to a partner, category and product, so grouped by partner and
//! category (`(key & KEY_WITHOUT_ORIGIN_MASK) >> PRODUCT_BITS`) a group holds all it needs:
//! its rows are sorted once, by product, origin and year, and read once.
//!
//! A plain aggregate function, registered by name in every session exdep makes and in
//! exdep's scheduler and executors ([`crate::product_margin_functions`]), so the plan runs
//! embedded and on a cluster alike; its state between the two phases of an aggregation is
//! the group's rows, as lists.

use std::mem::size_of;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Decimal128Array, Int32Array, Int64Array, ListArray,
    StructArray, UInt64Array,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::{
    DataType, Decimal128Type, Field, FieldRef, Fields, Int32Type, Int64Type, UInt64Type,
};
use datafusion::common::{HashMap, Result as DfResult, exec_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility,
};

use crate::cells::cell_sql::{KEY_ORIGIN_SHIFT, KEY_WITHOUT_ORIGIN_MASK, NATIONAL_SLOT};
use crate::cells::{CODE_MASK, PRODUCT_BITS};
use crate::chunked::Chunked;
use crate::one_group::{Groups, OneGroup};

/// The function's name.
pub const PRODUCT_GROWTH: &str = "exdep_product_growth";

/// The precision of the exact sums, the widest `Decimal128` (this function's and
/// [`crate::ProductSums`]').
pub(crate) const PRECISION: u8 = 38;

/// `exdep_product_growth(year, key, exports_usd, exports_cny, province)` over rows of the
/// product cube (a product key, see [`crate::cell_sql`]; exports as exact decimals; whether
/// the key's origin is a province, whose exports add up to the nation): a list with one
/// struct per year t and place (`key >> PRODUCT_BITS`) whose products have exports in t
/// or t-1, and one per year and place of the national aggregate (origin
/// [`NATIONAL_SLOT`], the sum over provinces), with
///
/// - `delta_usd`: exports in t less exports in t-1, and the parts it splits into:
///   `new_usd` (products with no exports in t-1), `lost_usd` (t-1's exports of products
///   with none in t) and `continuing_usd` (the change of products with exports in both),
///   so `delta = new - lost + continuing`; the same in CNY; the products of each part;
/// - `exports_usd`: exports in t;
/// - `served_usd`: for a province with exports in t, the national exports in t of the
///   products it exports to that partner (null otherwise).
///
/// A product's exports in a year are the sum of its rows; a product "has exports" when
/// that sum in USD is positive. The groups must keep every origin of a partner, category
/// and product together (group by a function of the key's bits below its origin).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ProductGrowth {
    signature: Signature,
}

impl Default for ProductGrowth {
    fn default() -> Self {
        ProductGrowth {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// The function, for every session and cluster process to register.
pub(crate) fn product_growth_function() -> Arc<AggregateUDF> {
    Arc::new(AggregateUDF::from(ProductGrowth::default()))
}

/// The money columns of a place's year, in the order of the struct's fields.
const MONEY: [&str; 10] = [
    "delta_usd",
    "new_usd",
    "lost_usd",
    "continuing_usd",
    "delta_cny",
    "new_cny",
    "lost_cny",
    "continuing_cny",
    "exports_usd",
    "served_usd",
];

/// The product counts of a place's year, in the order of the struct's fields.
const COUNTS: [&str; 3] = ["new_products", "lost_products", "continuing_products"];

/// The scales of the USD and CNY inputs, which the sums keep.
#[derive(Debug, Clone, Copy)]
struct Scales {
    usd: i8,
    cny: i8,
}

impl Scales {
    fn of(arg_types: &[DataType]) -> DfResult<Scales> {
        match arg_types {
            [
                _,
                _,
                DataType::Decimal128(_, usd),
                DataType::Decimal128(_, cny),
                _,
            ] => Ok(Scales {
                usd: *usd,
                cny: *cny,
            }),
            _ => plan_err!(
                "{PRODUCT_GROWTH} takes (year, key, exports_usd, exports_cny, province) with \
                 exports as decimals, not {arg_types:?}"
            ),
        }
    }

    fn of_fields(fields: &[FieldRef]) -> DfResult<Scales> {
        let types: Vec<DataType> = fields.iter().map(|f| f.data_type().clone()).collect();
        Scales::of(&types)
    }

    fn money_type(self, column: &str) -> DataType {
        let scale = if column.ends_with("_cny") {
            self.cny
        } else {
            self.usd
        };
        DataType::Decimal128(PRECISION, scale)
    }

    /// The struct of a place's year.
    fn row_fields(self) -> Fields {
        let mut fields = vec![
            Field::new("year", DataType::Int32, false),
            Field::new("place", DataType::Int64, false),
        ];
        fields.extend(
            MONEY.map(|column| Field::new(column, self.money_type(column), column == "served_usd")),
        );
        fields.extend(COUNTS.map(|column| Field::new(column, DataType::Int64, false)));
        fields.into()
    }

    fn row_list(self) -> DataType {
        DataType::List(Arc::new(Field::new_list_field(
            DataType::Struct(self.row_fields()),
            false,
        )))
    }
}

impl AggregateUDFImpl for ProductGrowth {
    fn name(&self) -> &str {
        PRODUCT_GROWTH
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        let decimal = |data_type: &DataType| match data_type {
            DataType::Decimal128(_, scale) => Ok(DataType::Decimal128(PRECISION, *scale)),
            other => plan_err!("{PRODUCT_GROWTH} sums exact decimals, not {other}"),
        };
        match arg_types {
            [_, _, usd, cny, _] => Ok(vec![
                DataType::Int32,
                DataType::Int64,
                decimal(usd)?,
                decimal(cny)?,
                DataType::Boolean,
            ]),
            _ => plan_err!(
                "{PRODUCT_GROWTH} takes 5 arguments (year, key, exports_usd, exports_cny, \
                 province)"
            ),
        }
    }

    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(Scales::of(arg_types)?.row_list())
    }

    fn state_fields(&self, args: StateFieldsArgs) -> DfResult<Vec<FieldRef>> {
        let scales = Scales::of_fields(args.input_fields)?;
        let list = |name: &str, item: DataType| {
            Arc::new(Field::new_list(
                format!("{}[{name}]", args.name),
                Field::new_list_field(item, false),
                false,
            ))
        };
        Ok(vec![
            list("order", DataType::UInt64),
            list("year", DataType::Int32),
            list("usd", DataType::Decimal128(PRECISION, scales.usd)),
            list("cny", DataType::Decimal128(PRECISION, scales.cny)),
        ])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        Ok(Box::new(OneGroup(ProductGroups::new(&args)?)))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> DfResult<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(ProductGroups::new(&args)?))
    }
}

/// One input row, summed later: its order (the key's bits below its origin, then its
/// origin, then whether that is a province), its year and its exports.
#[derive(Debug, Clone, Copy)]
struct Row {
    order: u64,
    year: i32,
    usd: i128,
    cny: i128,
}

impl Row {
    fn order(key: i64, province: bool) -> u64 {
        let below_origin = (key & KEY_WITHOUT_ORIGIN_MASK) as u64;
        let origin = ((key >> KEY_ORIGIN_SHIFT) & CODE_MASK) as u64;
        below_origin << 16 | origin << 1 | u64::from(province)
    }

    /// The partner, category and product.
    fn below_origin(order: u64) -> u64 {
        order >> 16
    }

    fn origin(order: u64) -> i64 {
        (order >> 1) as i64 & CODE_MASK
    }

    fn is_province(order: u64) -> bool {
        order & 1 == 1
    }
}

/// A place's sums for one year.
#[derive(Debug, Default, Clone, Copy)]
struct PlaceYear {
    exports_usd: i128,
    previous_usd: i128,
    exports_cny: i128,
    previous_cny: i128,
    new_usd: i128,
    new_cny: i128,
    lost_usd: i128,
    lost_cny: i128,
    continuing_usd: i128,
    continuing_cny: i128,
    served_usd: i128,
    new_products: i64,
    lost_products: i64,
    continuing_products: i64,
}

/// One product's exports from one origin in one year, its rows summed.
#[derive(Debug, Clone, Copy)]
struct Exports {
    year: i32,
    usd: i128,
    cny: i128,
}

/// The places' years of one group, as they are summed.
#[derive(Default)]
struct PlaceYears(HashMap<(i32, i64), PlaceYear>);

impl PlaceYears {
    /// Adds one origin's (or the nation's) product: its exports by year, ascending, each
    /// positive in USD; `national` the product's national exports by year, for a province.
    fn add_product(&mut self, place: i64, years: &[Exports], national: Option<&[Exports]>) {
        for (i, exports) in years.iter().enumerate() {
            let year = exports.year;
            let previous = (i > 0 && years[i - 1].year == year - 1).then(|| years[i - 1]);
            let sums = self.0.entry((year, place)).or_default();
            sums.exports_usd += exports.usd;
            sums.exports_cny += exports.cny;
            match previous {
                Some(previous) => {
                    sums.previous_usd += previous.usd;
                    sums.previous_cny += previous.cny;
                    sums.continuing_usd += exports.usd - previous.usd;
                    sums.continuing_cny += exports.cny - previous.cny;
                    sums.continuing_products += 1;
                }
                None => {
                    sums.new_usd += exports.usd;
                    sums.new_cny += exports.cny;
                    sums.new_products += 1;
                }
            }
            if let Some(national) = national {
                // The partial cubes hold no negative value, so a province's exporting
                // product is among the nation's.
                let nation = national.iter().find(|nation| nation.year == year);
                sums.served_usd += nation.map_or(0, |nation| nation.usd);
            }
            let continues = i + 1 < years.len() && years[i + 1].year == year + 1;
            if !continues {
                let next = self.0.entry((year + 1, place)).or_default();
                next.previous_usd += exports.usd;
                next.previous_cny += exports.cny;
                next.lost_usd += exports.usd;
                next.lost_cny += exports.cny;
                next.lost_products += 1;
            }
        }
    }
}

/// `rows` sorted by order and year. Sorting 16-byte keys (order, year, index) and then
/// gathering the rows once moves a third of the bytes that sorting the rows would.
fn sorted(rows: &Chunked<Row>) -> Vec<Row> {
    let mut keys: Vec<u128> = Vec::with_capacity(rows.len());
    keys.extend(rows.iter().enumerate().map(|(index, row)| {
        // The sign bit flipped, so that the unsigned order is the years' order.
        let year = u128::from(row.year as u32 ^ 1 << 31);
        u128::from(row.order) << 64 | year << 32 | index as u128
    }));
    keys.sort_unstable();
    keys.into_iter()
        .map(|key| *rows.get(key as u32 as usize))
        .collect()
}

/// Sums one group's rows into its places' years, sorted by year and place.
fn place_years(rows: &Chunked<Row>) -> Vec<((i32, i64), PlaceYear)> {
    let rows = sorted(rows);
    let mut places = PlaceYears::default();
    // Reused per product: each origin's exports by year, one origin's, and the nation's.
    let mut origins: Vec<(u64, Exports)> = Vec::new();
    let mut years: Vec<Exports> = Vec::new();
    let mut national: Vec<Exports> = Vec::new();
    for product in rows.chunk_by(|a, b| Row::below_origin(a.order) == Row::below_origin(b.order)) {
        origins.clear();
        national.clear();
        for same in product.chunk_by(|a, b| a.order == b.order && a.year == b.year) {
            let exports = Exports {
                year: same[0].year,
                usd: same.iter().map(|row| row.usd).sum(),
                cny: same.iter().map(|row| row.cny).sum(),
            };
            if Row::is_province(same[0].order) {
                match national.iter_mut().find(|n| n.year == exports.year) {
                    Some(nation) => {
                        nation.usd += exports.usd;
                        nation.cny += exports.cny;
                    }
                    None => national.push(exports),
                }
            }
            if exports.usd > 0 {
                origins.push((same[0].order, exports));
            }
        }
        national.retain(|nation| nation.usd > 0);
        national.sort_unstable_by_key(|nation| nation.year);
        let below_origin = Row::below_origin(product[0].order) as i64;
        let place_of = |origin: i64| (origin << KEY_ORIGIN_SHIFT | below_origin) >> PRODUCT_BITS;
        for origin in origins.chunk_by(|a, b| a.0 == b.0) {
            years.clear();
            years.extend(origin.iter().map(|(_, exports)| *exports));
            let order = origin[0].0;
            let reference = Row::is_province(order).then_some(national.as_slice());
            places.add_product(place_of(Row::origin(order)), &years, reference);
        }
        places.add_product(place_of(NATIONAL_SLOT), &national, None);
    }
    let mut place_years: Vec<_> = places.0.into_iter().collect();
    place_years.sort_unstable_by_key(|(year_place, _)| *year_place);
    place_years
}

/// The function's arguments in one batch, and the rows a filter lets through.
struct Inputs<'a> {
    year: &'a Int32Array,
    key: &'a Int64Array,
    usd: &'a Decimal128Array,
    cny: &'a Decimal128Array,
    province: &'a BooleanArray,
    filter: Option<&'a BooleanArray>,
}

impl<'a> Inputs<'a> {
    fn of(values: &'a [ArrayRef], filter: Option<&'a BooleanArray>) -> DfResult<Inputs<'a>> {
        let [year, key, usd, cny, province] = values else {
            return exec_err!("{PRODUCT_GROWTH} takes 5 arguments");
        };
        Ok(Inputs {
            year: year.as_primitive::<Int32Type>(),
            key: key.as_primitive::<Int64Type>(),
            usd: usd.as_primitive::<Decimal128Type>(),
            cny: cny.as_primitive::<Decimal128Type>(),
            province: province.as_boolean(),
            filter,
        })
    }

    /// Whether every row counts: no filter, no value missing.
    fn all_counted(&self) -> bool {
        self.filter.is_none()
            && [
                self.year.null_count(),
                self.key.null_count(),
                self.usd.null_count(),
            ]
            .into_iter()
            .chain([self.cny.null_count(), self.province.null_count()])
            .all(|nulls| nulls == 0)
    }

    /// Input row `row`, unless the filter leaves it out or a value is missing.
    fn row(&self, row: usize) -> Option<Row> {
        let counted = (self.filter).is_none_or(|filter| filter.is_valid(row) && filter.value(row));
        let complete = [self.year.is_valid(row), self.key.is_valid(row)]
            .into_iter()
            .chain([self.usd.is_valid(row), self.cny.is_valid(row)])
            .chain([self.province.is_valid(row)])
            .all(|valid| valid);
        (counted && complete).then(|| self.row_unchecked(row))
    }

    /// Input row `row`, which counts.
    fn row_unchecked(&self, row: usize) -> Row {
        Row {
            order: Row::order(self.key.value(row), self.province.value(row)),
            year: self.year.value(row),
            usd: self.usd.value(row),
            cny: self.cny.value(row),
        }
    }
}

/// The groups' rows, gathered as they come; summed when the groups are evaluated.
struct ProductGroups {
    scales: Scales,
    groups: Vec<Chunked<Row>>,
}

impl ProductGroups {
    fn new(args: &AccumulatorArgs) -> DfResult<ProductGroups> {
        Ok(ProductGroups {
            scales: Scales::of_fields(args.expr_fields)?,
            groups: Vec::new(),
        })
    }

    /// The state of each of `groups`: its rows, as four lists.
    fn state_of<'a, G>(&self, groups: impl Iterator<Item = G>) -> DfResult<Vec<ArrayRef>>
    where
        G: IntoIterator<Item = &'a Row>,
    {
        let (mut orders, mut years, mut usd, mut cny) = (vec![], vec![], vec![], vec![]);
        let mut offsets = vec![0];
        for rows in groups {
            for row in rows {
                orders.push(row.order);
                years.push(row.year);
                usd.push(row.usd);
                cny.push(row.cny);
            }
            offsets.push(orders.len() as i32);
        }
        let offsets = OffsetBuffer::new(offsets.into());
        let list = |values: ArrayRef| -> DfResult<ArrayRef> {
            let item = Arc::new(Field::new_list_field(values.data_type().clone(), false));
            Ok(Arc::new(ListArray::try_new(
                item,
                offsets.clone(),
                values,
                None,
            )?))
        };
        let decimal = |values: Vec<i128>, scale: i8| -> DfResult<ArrayRef> {
            Ok(Arc::new(
                Decimal128Array::from(values).with_precision_and_scale(PRECISION, scale)?,
            ))
        };
        Ok(vec![
            list(Arc::new(UInt64Array::from(orders)))?,
            list(Arc::new(Int32Array::from(years)))?,
            list(decimal(usd, self.scales.usd)?)?,
            list(decimal(cny, self.scales.cny)?)?,
        ])
    }

    /// Builds the function's value for each of `groups`.
    fn values(&self, groups: Vec<Chunked<Row>>) -> DfResult<ArrayRef> {
        let mut offsets = vec![0];
        let (mut years, mut places) = (Vec::new(), Vec::new());
        let mut money: [Vec<i128>; MONEY.len()] = Default::default();
        let mut served_nulls = Vec::new();
        let mut counts: [Vec<i64>; COUNTS.len()] = Default::default();
        for rows in groups {
            for ((year, place), sums) in place_years(&rows) {
                years.push(year);
                places.push(place);
                // Only a province's products add to `served_usd`, and those it exports in
                // `year` add their national exports, which are positive.
                let served = sums.served_usd > 0;
                let values = [
                    sums.exports_usd - sums.previous_usd,
                    sums.new_usd,
                    sums.lost_usd,
                    sums.continuing_usd,
                    sums.exports_cny - sums.previous_cny,
                    sums.new_cny,
                    sums.lost_cny,
                    sums.continuing_cny,
                    sums.exports_usd,
                    sums.served_usd,
                ];
                for (column, value) in money.iter_mut().zip(values) {
                    column.push(value);
                }
                served_nulls.push(served);
                let products = [
                    sums.new_products,
                    sums.lost_products,
                    sums.continuing_products,
                ];
                for (column, value) in counts.iter_mut().zip(products) {
                    column.push(value);
                }
            }
            offsets.push(years.len() as i32);
        }
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from(years)),
            Arc::new(Int64Array::from(places)),
        ];
        let mut served_nulls = Some(NullBuffer::from(served_nulls));
        for (column, values) in MONEY.iter().zip(money) {
            let nulls = if *column == "served_usd" {
                served_nulls.take()
            } else {
                None
            };
            let DataType::Decimal128(precision, scale) = self.scales.money_type(column) else {
                unreachable!("money is decimal")
            };
            let array = Decimal128Array::new(values.into(), nulls)
                .with_precision_and_scale(precision, scale)?;
            columns.push(Arc::new(array));
        }
        for values in counts {
            columns.push(Arc::new(Int64Array::from(values)));
        }
        let rows = StructArray::try_new(self.scales.row_fields(), columns, None)?;
        let DataType::List(item) = self.scales.row_list() else {
            unreachable!("a list")
        };
        let offsets = OffsetBuffer::new(offsets.into());
        Ok(Arc::new(ListArray::try_new(
            item,
            offsets,
            Arc::new(rows),
            None,
        )?))
    }
}

impl Groups for ProductGroups {
    fn grow(&mut self, total_num_groups: usize) {
        if self.groups.len() < total_num_groups {
            self.groups.resize_with(total_num_groups, Chunked::default);
        }
    }
}

impl GroupsAccumulator for ProductGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> DfResult<()> {
        self.grow(total_num_groups);
        let inputs = Inputs::of(values, opt_filter)?;
        if inputs.all_counted() {
            for (row, &group) in group_indices.iter().enumerate() {
                self.groups[group].push(inputs.row_unchecked(row));
            }
        } else {
            for (row, &group) in group_indices.iter().enumerate() {
                if let Some(row) = inputs.row(row) {
                    self.groups[group].push(row);
                }
            }
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> DfResult<ArrayRef> {
        let groups = emit_to.take_needed(&mut self.groups);
        self.values(groups)
    }

    fn state(&mut self, emit_to: EmitTo) -> DfResult<Vec<ArrayRef>> {
        let groups = emit_to.take_needed(&mut self.groups);
        self.state_of(groups.iter())
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> DfResult<Vec<ArrayRef>> {
        let inputs = Inputs::of(values, opt_filter)?;
        let rows: Vec<Option<Row>> = (0..inputs.year.len()).map(|row| inputs.row(row)).collect();
        self.state_of(rows.iter().map(Option::iter))
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> DfResult<()> {
        self.grow(total_num_groups);
        let [orders, years, usd, cny] = values else {
            return exec_err!("{PRODUCT_GROWTH}'s state has 4 lists");
        };
        let lists = [orders, years, usd, cny].map(|list| list.as_list::<i32>());
        let orders = lists[0].values().as_primitive::<UInt64Type>();
        let years = lists[1].values().as_primitive::<Int32Type>();
        let usd = lists[2].values().as_primitive::<Decimal128Type>();
        let cny = lists[3].values().as_primitive::<Decimal128Type>();
        let offsets = lists[0].value_offsets();
        for (row, &group) in group_indices.iter().enumerate() {
            let items = offsets[row] as usize..offsets[row + 1] as usize;
            self.groups[group].extend(items.map(|item| Row {
                order: orders.value(item),
                year: years.value(item),
                usd: usd.value(item),
                cny: cny.value(item),
            }));
        }
        Ok(())
    }

    fn size(&self) -> usize {
        self.groups.iter().map(Chunked::size).sum::<usize>()
            + self.groups.capacity() * size_of::<Chunked<Row>>()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use arrow::datatypes::Schema;
    use arrow::record_batch::RecordBatch;
    use datafusion::datasource::MemTable;
    use datafusion::prelude::{SessionConfig, SessionContext};

    use super::*;

    const PARTNER: i64 = 5;
    const CATEGORY: i64 = 2;
    const PROVINCE_A: i64 = 10;
    const PROVINCE_B: i64 = 11;
    const REPORTER: i64 = 12;

    fn key(origin: i64, product: i64) -> i64 {
        origin << KEY_ORIGIN_SHIFT | PARTNER << 28 | CATEGORY << 21 | product
    }

    /// The rows of two partial cubes: (year, origin, product, USD); CNY is 7 times USD.
    const FILES: [&[(i32, i64, i64, i128)]; 2] = [
        &[
            (2021, PROVINCE_A, 1, 100),
            (2022, PROVINCE_A, 1, 200),
            (2021, PROVINCE_A, 3, 0),
            (2022, PROVINCE_A, 3, 10),
            (2021, PROVINCE_B, 2, 40),
            (2022, REPORTER, 1, 7),
        ],
        // A second file with more of a product already in the first.
        &[(2021, PROVINCE_A, 1, 50), (2022, PROVINCE_A, 2, 30)],
    ];

    fn batch(rows: &[(i32, i64, i64, i128)]) -> RecordBatch {
        let money = |factor: i128| {
            let values = rows.iter().map(|row| row.3 * factor);
            Arc::new(
                Decimal128Array::from_iter_values(values)
                    .with_precision_and_scale(38, 10)
                    .unwrap(),
            ) as ArrayRef
        };
        let schema = Schema::new(vec![
            Field::new("year", DataType::Int32, false),
            Field::new("key", DataType::Int64, false),
            Field::new("exports_usd", DataType::Decimal128(38, 10), false),
            Field::new("exports_cny", DataType::Decimal128(38, 10), false),
        ]);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from_iter_values(rows.iter().map(|row| row.0))),
            Arc::new(Int64Array::from_iter_values(
                rows.iter().map(|row| key(row.1, row.2)),
            )),
            money(1),
            money(7),
        ];
        RecordBatch::try_new(Arc::new(schema), columns).unwrap()
    }

    /// The function's rows by (year, origin): the money in USD (CNY checked to be 7 times
    /// it), then the counts.
    async fn growth(partitions: usize) -> BTreeMap<(i32, i64), (Vec<Option<i128>>, Vec<i64>)> {
        let config = SessionConfig::new().with_target_partitions(partitions);
        let ctx = SessionContext::new_with_config(config);
        ctx.register_udaf(product_growth_function().as_ref().clone());
        // One file per partition, or both in one.
        let files: Vec<RecordBatch> = FILES.iter().map(|rows| batch(rows)).collect();
        let parts = match partitions {
            1 => vec![files.clone()],
            _ => files.iter().map(|file| vec![file.clone()]).collect(),
        };
        let table = MemTable::try_new(files[0].schema(), parts).unwrap();
        ctx.register_table("products", Arc::new(table)).unwrap();
        let sql = format!(
            "SELECT unnest(growth) AS growth FROM (
                 SELECT {PRODUCT_GROWTH}(year, key, exports_usd, exports_cny,
                                         (key >> {KEY_ORIGIN_SHIFT}) IN ({PROVINCE_A}, {PROVINCE_B}))
                        AS growth
                 FROM products GROUP BY (key & {KEY_WITHOUT_ORIGIN_MASK}) >> {PRODUCT_BITS})"
        );
        let mut rows = BTreeMap::new();
        for batch in ctx.sql(&sql).await.unwrap().collect().await.unwrap() {
            let structs = batch.column(0).as_struct();
            let column = |name: &str| structs.column_by_name(name).unwrap().clone();
            for row in 0..batch.num_rows() {
                let year = column("year").as_primitive::<Int32Type>().value(row);
                let place = column("place").as_primitive::<Int64Type>().value(row);
                assert_eq!(place & ((1 << 23) - 1), PARTNER << 8 | CATEGORY << 1);
                let money = |name: &str| {
                    let values = column(name);
                    let values = values.as_primitive::<Decimal128Type>();
                    values.is_valid(row).then(|| values.value(row))
                };
                for name in MONEY.into_iter().filter(|name| name.ends_with("_cny")) {
                    let usd = money(&name.replace("_cny", "_usd"));
                    assert_eq!(money(name), usd.map(|usd| usd * 7), "{name}");
                }
                let usd = ["delta", "new", "lost", "continuing", "exports", "served"]
                    .map(|part| money(&format!("{part}_usd")));
                let counts = COUNTS.map(|name| column(name).as_primitive::<Int64Type>().value(row));
                let origin = place >> (KEY_ORIGIN_SHIFT - PRODUCT_BITS);
                rows.insert((year, origin), (usd.to_vec(), counts.to_vec()));
            }
        }
        rows
    }

    #[tokio::test]
    async fn splits_each_places_growth_over_its_products() {
        let rows = growth(1).await;
        let row = |year: i32, origin: i64| rows[&(year, origin)].clone();
        let money = |values: [i128; 6], served: bool| {
            (values.iter().enumerate())
                .map(|(i, value)| (i < 5 || served).then_some(*value))
                .collect::<Vec<_>>()
        };
        // delta, new, lost, continuing, exports, served; new, lost and continuing products.
        // Province A: product 1 summed over both files and continuing (150 -> 200), products
        // 2 and 3 new (3 had exports of 0 in 2021); served by the nation's 200 + 30 + 10.
        assert_eq!(
            row(2022, PROVINCE_A),
            (money([90, 40, 0, 50, 240, 240], true), vec![2, 0, 1])
        );
        assert_eq!(
            row(2021, PROVINCE_A),
            (money([150, 150, 0, 0, 150, 150], true), vec![1, 0, 0])
        );
        // Province B lost its one product: no exports in 2022, so not served.
        assert_eq!(
            row(2022, PROVINCE_B),
            (money([-40, 0, 40, 0, 0, 0], false), vec![0, 1, 0])
        );
        // A reporter country is no province: not in the nation, not served.
        assert_eq!(
            row(2022, REPORTER),
            (money([7, 7, 0, 0, 7, 0], false), vec![1, 0, 0])
        );
        // The nation: the provinces' sums (150 + 40 -> 200 + 30 + 10).
        assert_eq!(
            row(2022, NATIONAL_SLOT),
            (money([50, 10, 0, 40, 240, 0], false), vec![1, 0, 2])
        );
        // Whatever is exported in the last year is lost the year after.
        assert_eq!(
            row(2023, NATIONAL_SLOT),
            (money([-240, 0, 240, 0, 0, 0], false), vec![0, 3, 0])
        );
        assert_eq!(rows.len(), 10, "{rows:?}");
    }

    #[tokio::test]
    async fn two_phase_aggregation_gives_the_same_sums() {
        // In one partition the engine aggregates in one phase; in two it gathers each
        // partition's groups first and passes their rows on as the function's state.
        assert_eq!(growth(2).await, growth(1).await);
    }
}
