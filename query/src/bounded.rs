//! Functions that make data out of a number are bounded.
//!
//! DataFusion's memory pool covers operators (sorts, joins, aggregations),
//! not the values scalar functions return: `lpad('x', 2147483647)` asks for
//! 2 GiB in one allocation, `range(0, 1500000000)` for 12 GB, and nothing
//! stops them before the allocator aborts the process. The functions whose
//! output is not bounded by their input — `repeat`, `lpad`, `rpad`,
//! `replace`, `regexp_replace`, `range`, `generate_series`, `array_repeat`
//! and `array_resize` — are registered wrapped here: before the real
//! function runs, the wrapper works out from its arguments the most it can
//! produce, and refuses (a query error naming the function and the limit)
//! beyond [`FunctionLimits::max_value_bytes`] for one value or
//! [`FunctionLimits::max_call_bytes`] for one call over a batch. Everything
//! else about the function (types, simplification, documentation) is the
//! wrapped one's.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::kernels::length::length;
use datafusion::arrow::compute::{cast, cast_with_options};
use datafusion::arrow::datatypes::{DataType, FieldRef, Int64Type, IntervalUnit, TimeUnit};
use datafusion::common::{Result, exec_datafusion_err, exec_err};
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::sort_properties::{ExprProperties, SortProperties};
use datafusion::logical_expr::udf_eq::UdfEq;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature,
};
use datafusion::prelude::SessionContext;
use smolder_common::memory::{Consumer, MemoryBudget};

/// How much one call of a bounded function may produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FunctionLimits {
    /// Bytes of one value (a string, or an array's elements).
    pub max_value_bytes: u64,
    /// Bytes of every value of one call (a batch of rows).
    pub max_call_bytes: u64,
}

impl Default for FunctionLimits {
    fn default() -> Self {
        Self {
            max_value_bytes: 1 << 20,
            max_call_bytes: 64 << 20,
        }
    }
}

/// How a function's output size follows from its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Bound {
    /// `repeat(s, n)`: len(s) × n.
    Repeat,
    /// `lpad(s, n [, fill])`, `rpad`: n characters of up to 4 bytes.
    Pad,
    /// `replace(s, from, to)`: every occurrence of `from` becomes `to`.
    Replace,
    /// `regexp_replace(s, pattern, replacement [, flags])`: a match may be
    /// empty (at every position), and each reference to a group copies at
    /// most the whole string over all matches.
    RegexpReplace,
    /// `range(stop)`, `range(start, stop [, step])`, `generate_series`:
    /// 8 bytes an element.
    Range,
    /// `array_repeat(element, n)`: n copies.
    ArrayRepeat,
    /// `array_resize(array, n [, value])`: n elements.
    ArrayResize,
}

const BOUNDED: [(&str, Bound); 9] = [
    ("repeat", Bound::Repeat),
    ("lpad", Bound::Pad),
    ("rpad", Bound::Pad),
    ("replace", Bound::Replace),
    ("regexp_replace", Bound::RegexpReplace),
    ("range", Bound::Range),
    ("generate_series", Bound::Range),
    ("array_repeat", Bound::ArrayRepeat),
    ("array_resize", Bound::ArrayResize),
];

/// Replaces the session's unbounded functions by bounded ones.
/// While it runs, a call holds its output's bound in `budget`, so that
/// concurrent calls cannot together outgrow the process's memory budget.
pub(crate) fn register(ctx: &SessionContext, limits: FunctionLimits, budget: &Arc<MemoryBudget>) {
    for (name, bound) in BOUNDED {
        if let Some(inner) = ctx.state().scalar_functions().get(name) {
            ctx.register_udf(ScalarUDF::new_from_impl(Bounded {
                inner: Arc::clone(inner.inner()).into(),
                bound,
                limits,
                budget: Budget(Arc::clone(budget)),
            }));
        }
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Bounded {
    inner: UdfEq<Arc<dyn ScalarUDFImpl>>,
    bound: Bound,
    limits: FunctionLimits,
    budget: Budget,
}

/// The budget, compared by identity (functions are compared and hashed).
#[derive(Debug)]
struct Budget(Arc<MemoryBudget>);

impl PartialEq for Budget {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Budget {}

impl std::hash::Hash for Budget {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        Arc::as_ptr(&self.0).hash(state);
    }
}

/// An argument's values as numbers (row by row; a scalar stands for every
/// row). `None` where the value is null or not a number.
struct Numbers(ArrayRef);

impl Numbers {
    fn new(arg: &ColumnarValue, to: &DataType) -> Option<Self> {
        let array = match arg {
            ColumnarValue::Array(a) => Arc::clone(a),
            ColumnarValue::Scalar(s) => s.to_array_of_size(1).ok()?,
        };
        let options = datafusion::arrow::compute::CastOptions {
            safe: true,
            ..Default::default()
        };
        cast_with_options(&array, to, &options)
            .ok()
            .and_then(|a| cast(&a, &DataType::Int64).ok())
            .map(Self)
    }

    fn at(&self, row: usize) -> Option<i64> {
        let values = self.0.as_primitive::<Int64Type>();
        let i = if values.len() == 1 { 0 } else { row };
        (i < values.len() && values.is_valid(i)).then(|| values.value(i))
    }
}

/// Byte lengths of a string argument.
fn byte_lengths(arg: &ColumnarValue) -> Option<Numbers> {
    let array = match arg {
        ColumnarValue::Array(a) => Arc::clone(a),
        ColumnarValue::Scalar(s) => s.to_array_of_size(1).ok()?,
    };
    let lengths = length(&array).ok()?;
    Some(Numbers(cast(&lengths, &DataType::Int64).ok()?))
}

/// Nanoseconds of a step (an interval counts its months as 31 days, the
/// longest they can be, so the element count is never underestimated...
/// for a positive step).
fn step_ns(arg: &ColumnarValue) -> Option<Numbers> {
    let array = match arg {
        ColumnarValue::Array(a) => Arc::clone(a),
        ColumnarValue::Scalar(s) => s.to_array_of_size(1).ok()?,
    };
    if !matches!(array.data_type(), DataType::Interval(_)) {
        return Numbers::new(arg, &DataType::Int64);
    }
    let intervals = cast(&array, &DataType::Interval(IntervalUnit::MonthDayNano)).ok()?;
    let intervals =
        intervals.as_primitive::<datafusion::arrow::datatypes::IntervalMonthDayNanoType>();
    const DAY: i64 = 86_400_000_000_000;
    let ns: datafusion::arrow::array::Int64Array = intervals
        .iter()
        .map(|v| {
            v.map(|v| {
                // The smallest the step can be: a month of 28 days.
                i64::from(v.months)
                    .saturating_mul(28 * DAY)
                    .saturating_add(i64::from(v.days).saturating_mul(DAY))
                    .saturating_add(v.nanoseconds)
            })
        })
        .collect();
    Some(Numbers(Arc::new(ns)))
}

/// The type a range's bounds are compared in.
fn range_type(arg: &ColumnarValue) -> DataType {
    match arg.data_type() {
        DataType::Date32 | DataType::Date64 | DataType::Timestamp(..) => {
            DataType::Timestamp(TimeUnit::Nanosecond, None)
        }
        _ => DataType::Int64,
    }
}

fn non_negative(n: Option<i64>) -> u64 {
    n.map_or(0, |n| u64::try_from(n).unwrap_or(0))
}

impl Bounded {
    /// The most bytes row `row` can produce, or `None` when it cannot be
    /// told (an argument of a type not foreseen: the call is not refused).
    fn row_bound(&self, args: &[Option<Numbers>], row: usize) -> Option<u64> {
        let n = |i: usize| args.get(i).and_then(Option::as_ref).map(|a| a.at(row));
        Some(match self.bound {
            Bound::Repeat => non_negative(n(0)?).saturating_mul(non_negative(n(1)?)),
            Bound::Pad => non_negative(n(1)?).saturating_mul(4),
            Bound::Replace => {
                let (s, from, to) = (
                    non_negative(n(0)?),
                    non_negative(n(1)?),
                    non_negative(n(2)?),
                );
                let matches = s.checked_div(from).unwrap_or(s) + 1;
                s.saturating_add(matches.saturating_mul(to))
            }
            Bound::RegexpReplace => {
                let (s, to) = (non_negative(n(0)?), non_negative(n(2)?));
                // References to groups (`$1`, `${name}`, `\1`): at most a
                // reference per two bytes of the replacement.
                let refs = to / 2 + 1;
                s.saturating_add((s + 1).saturating_mul(to))
                    .saturating_add(refs.saturating_mul(s))
            }
            Bound::Range => {
                let (start, stop, step) = match args.len() {
                    1 => (Some(0), n(0)?, Some(1)),
                    2 => (n(0)?, n(1)?, Some(1)),
                    _ => (n(0)?, n(1)?, n(2)?),
                };
                let (Some(start), Some(stop), Some(step)) = (start, stop, step) else {
                    return Some(0);
                };
                let span =
                    u64::try_from((i128::from(stop) - i128::from(start)).abs()).unwrap_or(u64::MAX);
                let step = step.unsigned_abs().max(1);
                (span / step + 1).saturating_mul(8)
            }
            Bound::ArrayRepeat => {
                let element = n(0).flatten().map_or(16, |e| non_negative(Some(e)).max(16));
                non_negative(n(1)?).saturating_mul(element)
            }
            Bound::ArrayResize => non_negative(n(1)?).saturating_mul(16),
        })
    }

    /// The argument values the bound needs, by position.
    fn sizes(&self, args: &[ColumnarValue]) -> Vec<Option<Numbers>> {
        let arg = |i: usize| args.get(i);
        match self.bound {
            Bound::Repeat => vec![
                arg(0).and_then(byte_lengths),
                arg(1).and_then(|a| Numbers::new(a, &DataType::Int64)),
            ],
            Bound::Pad => vec![None, arg(1).and_then(|a| Numbers::new(a, &DataType::Int64))],
            Bound::Replace | Bound::RegexpReplace => {
                args.iter().take(3).map(byte_lengths).collect()
            }
            Bound::Range => {
                let kind = args.first().map_or(DataType::Int64, range_type);
                let mut out: Vec<Option<Numbers>> = args
                    .iter()
                    .take(2)
                    .map(|a| Numbers::new(a, &kind))
                    .collect();
                if let Some(step) = arg(2) {
                    out.push(step_ns(step));
                }
                out
            }
            Bound::ArrayRepeat => vec![
                // An element's size: a list's memory per row, else a number.
                arg(0).and_then(|a| match a {
                    ColumnarValue::Array(a) if !a.is_empty() => Some(Numbers(Arc::new(
                        datafusion::arrow::array::Int64Array::from(vec![
                            i64::try_from(a.get_array_memory_size() / a.len()).unwrap_or(i64::MAX),
                        ]),
                    ))),
                    _ => None,
                }),
                arg(1).and_then(|a| Numbers::new(a, &DataType::Int64)),
            ],
            Bound::ArrayResize => {
                vec![None, arg(1).and_then(|a| Numbers::new(a, &DataType::Int64))]
            }
        }
    }

    /// The most the call can produce, in bytes, or an error beyond the limits.
    fn check(&self, args: &ScalarFunctionArgs) -> Result<u64> {
        let sizes = self.sizes(&args.args);
        let all_scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let rows = if all_scalar { 1 } else { args.number_rows };
        let mut total: u64 = 0;
        for row in 0..rows {
            let Some(bytes) = self.row_bound(&sizes, row) else {
                continue;
            };
            if bytes > self.limits.max_value_bytes {
                return exec_err!(
                    "{}() would produce up to {bytes} bytes in one value; at most {} are allowed",
                    self.inner.name(),
                    self.limits.max_value_bytes
                );
            }
            total = total.saturating_add(bytes);
            if total > self.limits.max_call_bytes {
                return exec_err!(
                    "{}() would produce more than {} bytes over {rows} rows; at most {} are \
                     allowed in one batch",
                    self.inner.name(),
                    total,
                    self.limits.max_call_bytes
                );
            }
        }
        Ok(total)
    }
}

impl ScalarUDFImpl for Bounded {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn schema_name(&self, args: &[Expr]) -> Result<String> {
        self.inner.schema_name(args)
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn is_strict(&self) -> bool {
        self.inner.is_strict()
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let bound = self.check(&args)?;
        let _held = self
            .budget
            .0
            .reserve(
                Consumer::Query,
                usize::try_from(bound).unwrap_or(usize::MAX),
            )
            .map_err(|e| exec_datafusion_err!("{}(): {e}; try later", self.inner.name()))?;
        self.inner.invoke_with_args(args)
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn simplify(&self, args: Vec<Expr>, info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        self.inner.simplify(args, info)
    }

    fn short_circuits(&self) -> bool {
        self.inner.short_circuits()
    }

    fn output_ordering(&self, inputs: &[ExprProperties]) -> Result<SortProperties> {
        self.inner.output_ordering(inputs)
    }

    fn preserves_lex_ordering(&self, inputs: &[ExprProperties]) -> Result<bool> {
        self.inner.preserves_lex_ordering(inputs)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }
}
