//! SQL functions for telemetry, registered in every [`crate::QueryEngine`]:
//!
//! * `counter_increase(value, time, start_time, temporality [, series])` —
//!   aggregate: how much a counter grew over the rows it sees. Cumulative
//!   points count the difference to the previous point of the same series
//!   (the first point of a series is its baseline); a new start time or a
//!   decrease is a reset, after which the whole value counts. Delta points
//!   count their value. `series` (any value, typically the `attributes` map)
//!   keeps series apart when one group holds several.
//! * `histogram_count_le(bucket_bounds, bucket_counts, threshold)` — the
//!   number of observations at or below `threshold`, which must be a bucket
//!   bound (an error says so otherwise: the buckets cannot tell).
//! * `histogram_fraction_le(bucket_bounds, bucket_counts, threshold)` — that
//!   count as a fraction of all observations.
//! * `histogram_quantile(q, bucket_bounds, bucket_counts)` — the q-quantile,
//!   interpolated linearly inside its bucket as Prometheus does.
//! * `histogram_sum(bucket_counts)` — aggregate: bucket counts added up
//!   element-wise, for a quantile over many (delta) points.
//! * `exp_histogram_count_le(exp_scale, exp_zero_count, exp_positive_offset,
//!   exp_positive_bucket_counts, exp_negative_bucket_counts, threshold)` — the
//!   number of observations of an exponential histogram at or below
//!   `threshold` (> 0), which must be a bucket bound (a power of
//!   2^(2^-scale)); zero and negative observations all count.
//! * `series_hash(value, …)` — a 64-bit hash (BIGINT) of its arguments (any types,
//!   maps included), to tell metric series apart, e.g. in
//!   `PARTITION BY series_hash(metric_name, attributes, resource_attributes)`.
//!
//! Trace and span ids are stored as lowercase hex text, so they need no
//! conversion function: `WHERE trace_id = '5b8e…'`.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Float64Builder, Int64Array, ListArray, ListBuilder,
    UInt64Array, UInt64Builder,
};
use datafusion::arrow::datatypes::{
    DataType, Field, FieldRef, Float64Type, Int32Type, TimeUnit, TimestampNanosecondType,
    UInt64Type,
};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::hash_utils::{QualityRandomState, create_hashes};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

/// Registers every function of this module.
pub(crate) fn register(ctx: &SessionContext) {
    ctx.register_udaf(AggregateUDF::from(CounterIncrease::default()));
    ctx.register_udaf(AggregateUDF::from(HistogramSum::default()));
    for kind in [
        HistogramFn::CountLe,
        HistogramFn::FractionLe,
        HistogramFn::Quantile,
    ] {
        ctx.register_udf(ScalarUDF::from(Histogram::new(kind)));
    }
    ctx.register_udf(ScalarUDF::from(ExpHistogramCountLe::default()));
    ctx.register_udf(ScalarUDF::from(SeriesHash::default()));
}

fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

fn list_of(item: DataType) -> DataType {
    DataType::List(Arc::new(Field::new("item", item, true)))
}

// ---------------------------------------------------------------------------
// counter_increase

#[derive(Debug, PartialEq, Eq, Hash)]
struct CounterIncrease {
    signature: Signature,
}

impl Default for CounterIncrease {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for CounterIncrease {
    fn name(&self) -> &str {
        "counter_increase"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types.len() {
            4 => Ok(vec![
                DataType::Float64,
                timestamp(),
                timestamp(),
                DataType::Utf8,
            ]),
            // The series is kept as it is and compared by its text.
            5 => Ok(vec![
                DataType::Float64,
                timestamp(),
                timestamp(),
                DataType::Utf8,
                arg_types[4].clone(),
            ]),
            n => plan_err!(
                "counter_increase(value, time, start_time, temporality [, series]) takes 4 or 5 arguments, got {n}"
            ),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::<CounterAccumulator>::default())
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let field = |name: &str, item: DataType| {
            Arc::new(Field::new(
                format!("{}[{name}]", args.name),
                list_of(item),
                true,
            ))
        };
        Ok(vec![
            field("series", DataType::Utf8),
            field("time", DataType::Int64),
            field("start_time", DataType::Int64),
            field("value", DataType::Float64),
            field("delta", DataType::Boolean),
        ])
    }
}

#[derive(Debug, Clone)]
struct Point {
    time: i64,
    start: i64,
    value: f64,
    delta: bool,
}

#[derive(Debug, Default)]
struct CounterAccumulator {
    series: HashMap<String, Vec<Point>>,
}

impl CounterAccumulator {
    fn points(&self) -> usize {
        self.series.values().map(Vec::len).sum()
    }
}

/// The increase of one series from its points (any order).
fn series_increase(points: &mut [Point]) -> f64 {
    points.sort_by_key(|p| p.time);
    let mut total = 0.0;
    let mut previous: Option<&Point> = None;
    for point in points.iter() {
        if point.delta {
            total += point.value;
        } else if let Some(prev) = previous {
            let reset = point.value < prev.value || (point.start != 0 && point.start != prev.start);
            total += if reset {
                point.value
            } else {
                point.value - prev.value
            };
        }
        previous = Some(point);
    }
    total
}

impl Accumulator for CounterAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let value = values[0].as_primitive::<Float64Type>();
        let time = values[1].as_primitive::<TimestampNanosecondType>();
        let start = values[2].as_primitive::<TimestampNanosecondType>();
        let temporality = values[3].as_string::<i32>();
        let options = FormatOptions::default();
        let series = values
            .get(4)
            .map(|s| ArrayFormatter::try_new(s.as_ref(), &options).map(|f| (s, f)))
            .transpose()?;
        for i in 0..value.len() {
            if value.is_null(i) || time.is_null(i) || value.value(i).is_nan() {
                continue;
            }
            let delta = match temporality.is_valid(i).then(|| temporality.value(i)) {
                Some("delta") => true,
                Some("cumulative") => false,
                other => {
                    return exec_err!(
                        "counter_increase: temporality must be 'delta' or 'cumulative', got {other:?}"
                    );
                }
            };
            let key = series
                .as_ref()
                .filter(|(s, _)| s.is_valid(i))
                .map_or_else(String::new, |(_, f)| f.value(i).to_string());
            self.series.entry(key).or_default().push(Point {
                time: time.value(i),
                start: if start.is_null(i) { 0 } else { start.value(i) },
                value: value.value(i),
                delta,
            });
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        if self.series.is_empty() {
            return Ok(ScalarValue::Float64(None));
        }
        let total = self.series.values_mut().map(|p| series_increase(p)).sum();
        Ok(ScalarValue::Float64(Some(total)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self.points() * std::mem::size_of::<Point>()
            + self.series.keys().map(String::len).sum::<usize>()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let mut series = Vec::new();
        let (mut times, mut starts, mut values, mut deltas) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (key, points) in &self.series {
            for p in points {
                series.push(ScalarValue::Utf8(Some(key.clone())));
                times.push(ScalarValue::Int64(Some(p.time)));
                starts.push(ScalarValue::Int64(Some(p.start)));
                values.push(ScalarValue::Float64(Some(p.value)));
                deltas.push(ScalarValue::Boolean(Some(p.delta)));
            }
        }
        let list = |items: Vec<ScalarValue>, item: DataType| {
            ScalarValue::List(ScalarValue::new_list_nullable(&items, &item))
        };
        Ok(vec![
            list(series, DataType::Utf8),
            list(times, DataType::Int64),
            list(starts, DataType::Int64),
            list(values, DataType::Float64),
            list(deltas, DataType::Boolean),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let lists: Vec<&ListArray> = states.iter().map(|s| s.as_list::<i32>()).collect();
        for row in 0..lists[0].len() {
            if lists[0].is_null(row) {
                continue;
            }
            let series = lists[0].value(row);
            let series = series.as_string::<i32>();
            let times = lists[1].value(row);
            let times = times.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
            let starts = lists[2].value(row);
            let starts = starts.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
            let values = lists[3].value(row);
            let values = values.as_primitive::<Float64Type>();
            let deltas = lists[4].value(row);
            let deltas = deltas.as_boolean();
            for i in 0..series.len() {
                self.series
                    .entry(series.value(i).to_string())
                    .or_default()
                    .push(Point {
                        time: times.value(i),
                        start: starts.value(i),
                        value: values.value(i),
                        delta: deltas.value(i),
                    });
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// histogram_sum

#[derive(Debug, PartialEq, Eq, Hash)]
struct HistogramSum {
    signature: Signature,
}

impl Default for HistogramSum {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for HistogramSum {
    fn name(&self) -> &str {
        "histogram_sum"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if arg_types.len() != 1 {
            return plan_err!("histogram_sum(bucket_counts) takes one argument");
        }
        Ok(vec![list_of(DataType::UInt64)])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(list_of(DataType::UInt64))
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::<SumAccumulator>::default())
    }
}

#[derive(Debug, Default)]
struct SumAccumulator {
    counts: Option<Vec<u64>>,
}

impl SumAccumulator {
    fn add_lists(&mut self, lists: &ListArray) -> Result<()> {
        for row in 0..lists.len() {
            if lists.is_null(row) {
                continue;
            }
            let counts = lists.value(row);
            let counts = counts.as_primitive::<UInt64Type>();
            let sum = self.counts.get_or_insert_with(|| vec![0; counts.len()]);
            if sum.len() != counts.len() {
                return exec_err!(
                    "histogram_sum: histograms with {} and {} buckets cannot be added; group by the bucket bounds",
                    sum.len(),
                    counts.len()
                );
            }
            for (s, c) in sum.iter_mut().zip(counts.values().iter()) {
                *s += c;
            }
        }
        Ok(())
    }
}

impl Accumulator for SumAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.add_lists(values[0].as_list::<i32>())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let mut builder = ListBuilder::new(UInt64Builder::new());
        match &self.counts {
            Some(counts) => builder.append_value(counts.iter().map(|c| Some(*c))),
            None => builder.append_null(),
        }
        Ok(ScalarValue::List(Arc::new(builder.finish())))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.counts.as_ref().map_or(0, |c| c.len() * 8)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.add_lists(states[0].as_list::<i32>())
    }
}

// ---------------------------------------------------------------------------
// histogram_count_le, histogram_fraction_le, histogram_quantile

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum HistogramFn {
    CountLe,
    FractionLe,
    Quantile,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Histogram {
    kind: HistogramFn,
    signature: Signature,
}

impl Histogram {
    fn new(kind: HistogramFn) -> Self {
        Self {
            kind,
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// Observations at or below `threshold`, which must be a bound.
fn count_le(bounds: &[f64], counts: &[u64], threshold: f64) -> Result<u64> {
    let Some(i) = bounds.iter().position(|b| *b == threshold) else {
        return exec_err!(
            "{threshold} is not a bucket bound of this histogram (bounds {bounds:?}): the buckets \
             cannot tell how many observations are at or below it; use one of the bounds"
        );
    };
    Ok(counts.iter().take(i + 1).sum())
}

/// The q-quantile, interpolated linearly inside its bucket; the open-ended
/// last bucket answers with the largest bound.
fn quantile(q: f64, bounds: &[f64], counts: &[u64]) -> Option<f64> {
    let total: u64 = counts.iter().sum();
    if total == 0 || !(0.0..=1.0).contains(&q) || counts.len() != bounds.len() + 1 {
        return None;
    }
    let rank = q * total as f64;
    let mut seen = 0u64;
    for (i, count) in counts.iter().enumerate() {
        if *count > 0 && (seen + count) as f64 >= rank {
            if i == bounds.len() {
                return bounds.last().copied();
            }
            let upper = bounds[i];
            let lower = if i == 0 {
                upper.min(0.0)
            } else {
                bounds[i - 1]
            };
            let into = (rank - seen as f64) / *count as f64;
            return Some(lower + (upper - lower) * into);
        }
        seen += count;
    }
    bounds.last().copied()
}

impl ScalarUDFImpl for Histogram {
    fn name(&self) -> &str {
        match self.kind {
            HistogramFn::CountLe => "histogram_count_le",
            HistogramFn::FractionLe => "histogram_fraction_le",
            HistogramFn::Quantile => "histogram_quantile",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if arg_types.len() != 3 {
            return plan_err!("{} takes 3 arguments, got {}", self.name(), arg_types.len());
        }
        let bounds = list_of(DataType::Float64);
        let counts = list_of(DataType::UInt64);
        Ok(match self.kind {
            HistogramFn::Quantile => vec![DataType::Float64, bounds, counts],
            _ => vec![bounds, counts, DataType::Float64],
        })
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(match self.kind {
            HistogramFn::CountLe => DataType::UInt64,
            _ => DataType::Float64,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let (bounds, counts, x) = match self.kind {
            HistogramFn::Quantile => (&arrays[1], &arrays[2], &arrays[0]),
            _ => (&arrays[0], &arrays[1], &arrays[2]),
        };
        let bounds = bounds.as_list::<i32>();
        let counts = counts.as_list::<i32>();
        let x = x.as_primitive::<Float64Type>();
        let rows = args.number_rows;
        let row = |i: usize| -> Option<(Vec<f64>, Vec<u64>, f64)> {
            if bounds.is_null(i) || counts.is_null(i) || x.is_null(i) {
                return None;
            }
            let b = bounds.value(i);
            let c = counts.value(i);
            Some((
                b.as_primitive::<Float64Type>().values().to_vec(),
                c.as_primitive::<UInt64Type>().values().to_vec(),
                x.value(i),
            ))
        };
        let out: ArrayRef = match self.kind {
            HistogramFn::CountLe => {
                let mut values = Vec::with_capacity(rows);
                for i in 0..rows {
                    values.push(match row(i) {
                        Some((b, c, t)) => Some(count_le(&b, &c, t)?),
                        None => None,
                    });
                }
                Arc::new(UInt64Array::from(values))
            }
            HistogramFn::FractionLe => {
                let mut out = Float64Builder::with_capacity(rows);
                for i in 0..rows {
                    match row(i) {
                        Some((b, c, t)) => {
                            let total: u64 = c.iter().sum();
                            let le = count_le(&b, &c, t)?;
                            out.append_option((total > 0).then(|| le as f64 / total as f64));
                        }
                        None => out.append_null(),
                    }
                }
                Arc::new(out.finish())
            }
            HistogramFn::Quantile => Arc::new(Float64Array::from_iter(
                (0..rows).map(|i| row(i).and_then(|(b, c, q)| quantile(q, &b, &c))),
            )),
        };
        Ok(ColumnarValue::Array(out))
    }
}

// exp_histogram_count_le

#[derive(Debug, PartialEq, Eq, Hash)]
struct ExpHistogramCountLe {
    signature: Signature,
}

impl Default for ExpHistogramCountLe {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// Observations of an exponential histogram at or below `threshold`.
/// Bucket `i` covers (base^i, base^(i+1)] with base = 2^(2^-scale).
fn exp_count_le(
    scale: i32,
    zero: u64,
    offset: i32,
    positive: &[u64],
    negative: &[u64],
    threshold: f64,
) -> Result<u64> {
    if threshold.is_nan() || threshold <= 0.0 {
        return exec_err!(
            "exp_histogram_count_le: the threshold must be positive, got {threshold}"
        );
    }
    // threshold = base^n  ⇔  n = log2(threshold) · 2^scale.
    let n = threshold.log2() * 2f64.powi(scale);
    let whole = n.round();
    if (n - whole).abs() > 1e-9 * n.abs().max(1.0) {
        let base = 2f64.powf(2f64.powi(-scale));
        return exec_err!(
            "{threshold} is not a bucket bound of this exponential histogram (scale {scale}: \
             bounds are powers of {base}; the nearest are {} and {}): the buckets cannot tell how \
             many observations are at or below it",
            base.powf(n.floor()),
            base.powf(n.ceil())
        );
    }
    // Buckets i ≤ n − 1 lie at or below base^n.
    let last = whole as i64 - 1 - i64::from(offset);
    let positive: u64 = positive
        .iter()
        .take(usize::try_from(last + 1).unwrap_or(0))
        .sum();
    Ok(zero + positive + negative.iter().sum::<u64>())
}

impl ScalarUDFImpl for ExpHistogramCountLe {
    fn name(&self) -> &str {
        "exp_histogram_count_le"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if arg_types.len() != 6 {
            return plan_err!(
                "exp_histogram_count_le(exp_scale, exp_zero_count, exp_positive_offset, exp_positive_bucket_counts, exp_negative_bucket_counts, threshold) takes 6 arguments, got {}",
                arg_types.len()
            );
        }
        let counts = list_of(DataType::UInt64);
        Ok(vec![
            DataType::Int32,
            DataType::UInt64,
            DataType::Int32,
            counts.clone(),
            counts,
            DataType::Float64,
        ])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::UInt64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let scale = arrays[0].as_primitive::<Int32Type>();
        let zero = arrays[1].as_primitive::<UInt64Type>();
        let offset = arrays[2].as_primitive::<Int32Type>();
        let positive = arrays[3].as_list::<i32>();
        let negative = arrays[4].as_list::<i32>();
        let threshold = arrays[5].as_primitive::<Float64Type>();
        let counts = |list: &ListArray, i: usize| -> Vec<u64> {
            if list.is_null(i) {
                Vec::new()
            } else {
                list.value(i).as_primitive::<UInt64Type>().values().to_vec()
            }
        };
        let mut out = Vec::with_capacity(args.number_rows);
        for i in 0..args.number_rows {
            if scale.is_null(i) || threshold.is_null(i) {
                out.push(None);
                continue;
            }
            out.push(Some(exp_count_le(
                scale.value(i),
                if zero.is_null(i) { 0 } else { zero.value(i) },
                if offset.is_null(i) {
                    0
                } else {
                    offset.value(i)
                },
                &counts(positive, i),
                &counts(negative, i),
                threshold.value(i),
            )?));
        }
        Ok(ColumnarValue::Array(Arc::new(UInt64Array::from(out))))
    }
}

// series_hash

#[derive(Debug, PartialEq, Eq, Hash)]
struct SeriesHash {
    signature: Signature,
}

impl Default for SeriesHash {
    fn default() -> Self {
        Self {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for SeriesHash {
    fn name(&self) -> &str {
        "series_hash"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let mut hashes = vec![0u64; args.number_rows];
        // A fixed seed: equal values hash equally across batches and queries.
        let state = QualityRandomState::with_seed(0x0073_6d6f_6c64_6572);
        create_hashes(&arrays, &state, &mut hashes)?;
        // As signed integers: they travel through SQL literals unharmed.
        let hashes: Vec<i64> = hashes.into_iter().map(|h| h as i64).collect();
        Ok(ColumnarValue::Array(Arc::new(Int64Array::from(hashes))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_histogram_count_le() {
        // Scale 0: base 2, bucket i covers (2^i, 2^(i+1)]. Offset -2: buckets
        // (0.25, 0.5], (0.5, 1], (1, 2], (2, 4].
        let positive = [1, 2, 3, 4];
        assert_eq!(
            exp_count_le(0, 5, -2, &positive, &[], 1.0).unwrap(),
            5 + 1 + 2
        );
        assert_eq!(
            exp_count_le(0, 5, -2, &positive, &[7], 0.25).unwrap(),
            5 + 7
        );
        assert_eq!(exp_count_le(0, 0, -2, &positive, &[], 64.0).unwrap(), 10);
        // Scale 1: base √2, so 2^(1/2) is a bound but 1.5 is not.
        assert_eq!(exp_count_le(1, 0, 0, &[1, 1], &[], 2f64.sqrt()).unwrap(), 1);
        let err = exp_count_le(1, 0, 0, &[1], &[], 1.5)
            .unwrap_err()
            .to_string();
        assert!(err.contains("1.5 is not a bucket bound"), "{err}");
        assert!(exp_count_le(0, 0, 0, &[], &[], 0.0).is_err());
    }

    fn cumulative(time: i64, start: i64, value: f64) -> Point {
        Point {
            time,
            start,
            value,
            delta: false,
        }
    }

    #[test]
    fn cumulative_increase_handles_resets_and_order() {
        // 10 → 15 → reset to 3 (value fell) → 8 → new start time at 4.
        let mut points = vec![
            cumulative(3, 1, 3.0),
            cumulative(1, 1, 10.0),
            cumulative(2, 1, 15.0),
            cumulative(4, 1, 8.0),
            cumulative(5, 9, 4.0),
        ];
        assert_eq!(series_increase(&mut points), 5.0 + 3.0 + 5.0 + 4.0);
        let mut delta = vec![
            Point {
                time: 1,
                start: 0,
                value: 2.0,
                delta: true,
            };
            3
        ];
        assert_eq!(series_increase(&mut delta), 6.0);
    }

    #[test]
    fn histogram_helpers_use_bucket_bounds() {
        let bounds = [0.1, 0.3, 1.0];
        let counts = [5, 10, 4, 1];
        assert_eq!(count_le(&bounds, &counts, 0.3).unwrap(), 15);
        let err = count_le(&bounds, &counts, 0.25).unwrap_err().to_string();
        assert!(err.contains("0.25 is not a bucket bound"), "{err}");
        let median = quantile(0.5, &bounds, &counts).unwrap();
        assert!((median - 0.2).abs() < 1e-12, "{median}");
        assert_eq!(quantile(1.0, &bounds, &counts), Some(1.0));
        assert_eq!(quantile(0.5, &bounds, &[0, 0, 0, 0]), None);
    }
}
