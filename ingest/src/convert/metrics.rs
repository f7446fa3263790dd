//! `ExportMetricsServiceRequest` → `metrics` batch: one row per data point of
//! every metric type (gauge, sum, histogram, exponential histogram, summary).

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int32Builder, Int64Builder, ListBuilder,
    StringBuilder, StringDictionaryBuilder, StructArray, TimestampNanosecondBuilder, UInt32Builder,
    UInt64Builder,
};
use datafusion::arrow::datatypes::Int32Type;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    Exemplar, Metric, exemplar, metric::Data, number_data_point,
};
use smolder_common::schema;

use super::spans::push_offset;
use super::{
    AttributeBuilder, Converted, Rejections, ResourceScope, append_dict_or_null,
    append_hex_or_null, append_ts_or_null, bad_id, check_id, list_column, nanos, timestamp_builder,
};

/// The readable name of an aggregation temporality, `None` when unspecified.
pub(crate) fn temporality_name(t: i32) -> Option<&'static str> {
    match t {
        1 => Some("delta"),
        2 => Some("cumulative"),
        _ => None,
    }
}

/// Converts a metrics export request into a `metrics` batch.
pub fn metrics(request: &ExportMetricsServiceRequest) -> Result<Converted, ArrowError> {
    let mut b = Builders::new();
    let mut rejections = Rejections::default();
    for rm in &request.resource_metrics {
        b.rs.push_resource(rm.resource.as_ref(), &rm.schema_url);
        for sm in &rm.scope_metrics {
            b.rs.push_scope(sm.scope.as_ref(), &sm.schema_url);
            for metric in &sm.metrics {
                b.append_metric(metric, &mut rejections);
            }
        }
    }
    Ok(rejections.into_converted(b.finish()?))
}

/// The columns every data point has, whatever its metric type.
struct Common<'a> {
    metric: &'a Metric,
    metric_type: &'static str,
    temporality: Option<&'static str>,
    is_monotonic: Option<bool>,
    attributes: &'a [KeyValue],
    start_time: u64,
    time: u64,
    flags: u32,
    exemplars: &'a [Exemplar],
}

fn invalid_exemplars(exemplars: &[Exemplar]) -> Option<String> {
    exemplars.iter().find_map(|e| {
        if !check_id(&e.trace_id, 16, true) {
            Some(bad_id("exemplar trace_id", &e.trace_id, 16))
        } else if !check_id(&e.span_id, 8, true) {
            Some(bad_id("exemplar span_id", &e.span_id, 8))
        } else {
            None
        }
    })
}

struct Builders {
    time: TimestampNanosecondBuilder,
    start_time: TimestampNanosecondBuilder,
    metric_name: StringDictionaryBuilder<Int32Type>,
    metric_type: StringDictionaryBuilder<Int32Type>,
    metric_unit: StringDictionaryBuilder<Int32Type>,
    metric_description: StringDictionaryBuilder<Int32Type>,
    temporality: StringDictionaryBuilder<Int32Type>,
    is_monotonic: BooleanBuilder,
    metadata: AttributeBuilder,
    flags: UInt32Builder,
    value: Float64Builder,
    value_int: Int64Builder,
    count: UInt64Builder,
    sum: Float64Builder,
    min: Float64Builder,
    max: Float64Builder,
    bucket_bounds: ListBuilder<Float64Builder>,
    bucket_counts: ListBuilder<UInt64Builder>,
    exp_scale: Int32Builder,
    exp_zero_count: UInt64Builder,
    exp_zero_threshold: Float64Builder,
    exp_positive_offset: Int32Builder,
    exp_positive_counts: ListBuilder<UInt64Builder>,
    exp_negative_offset: Int32Builder,
    exp_negative_counts: ListBuilder<UInt64Builder>,
    quantile_offsets: Vec<i32>,
    quantile: Float64Builder,
    quantile_value: Float64Builder,
    exemplar_offsets: Vec<i32>,
    exemplar_time: TimestampNanosecondBuilder,
    exemplar_value: Float64Builder,
    exemplar_value_int: Int64Builder,
    exemplar_trace_id: StringBuilder,
    exemplar_span_id: StringBuilder,
    exemplar_attributes: AttributeBuilder,
    attributes: AttributeBuilder,
    rs: ResourceScope,
}

impl Builders {
    fn new() -> Self {
        Self {
            time: timestamp_builder(),
            start_time: timestamp_builder(),
            metric_name: StringDictionaryBuilder::new(),
            metric_type: StringDictionaryBuilder::new(),
            metric_unit: StringDictionaryBuilder::new(),
            metric_description: StringDictionaryBuilder::new(),
            temporality: StringDictionaryBuilder::new(),
            is_monotonic: BooleanBuilder::new(),
            metadata: AttributeBuilder::new(),
            flags: UInt32Builder::new(),
            value: Float64Builder::new(),
            value_int: Int64Builder::new(),
            count: UInt64Builder::new(),
            sum: Float64Builder::new(),
            min: Float64Builder::new(),
            max: Float64Builder::new(),
            bucket_bounds: ListBuilder::new(Float64Builder::new()),
            bucket_counts: ListBuilder::new(UInt64Builder::new()),
            exp_scale: Int32Builder::new(),
            exp_zero_count: UInt64Builder::new(),
            exp_zero_threshold: Float64Builder::new(),
            exp_positive_offset: Int32Builder::new(),
            exp_positive_counts: ListBuilder::new(UInt64Builder::new()),
            exp_negative_offset: Int32Builder::new(),
            exp_negative_counts: ListBuilder::new(UInt64Builder::new()),
            quantile_offsets: vec![0],
            quantile: Float64Builder::new(),
            quantile_value: Float64Builder::new(),
            exemplar_offsets: vec![0],
            exemplar_time: timestamp_builder(),
            exemplar_value: Float64Builder::new(),
            exemplar_value_int: Int64Builder::new(),
            exemplar_trace_id: StringBuilder::new(),
            exemplar_span_id: StringBuilder::new(),
            exemplar_attributes: AttributeBuilder::new(),
            attributes: AttributeBuilder::new(),
            rs: ResourceScope::with_capacity(0),
        }
    }

    fn append_metric(&mut self, metric: &Metric, rejections: &mut Rejections) {
        let Some(data) = metric.data.as_ref() else {
            return;
        };
        if metric.name.is_empty() {
            let points = match data {
                Data::Gauge(g) => g.data_points.len(),
                Data::Sum(s) => s.data_points.len(),
                Data::Histogram(h) => h.data_points.len(),
                Data::ExponentialHistogram(h) => h.data_points.len(),
                Data::Summary(s) => s.data_points.len(),
            };
            for _ in 0..points {
                rejections.reject(|| "metric name must not be empty".to_string());
            }
            return;
        }
        let common =
            |metric_type, temporality: i32, mono, p_attrs, start, time, flags, ex| Common {
                metric,
                metric_type,
                temporality: temporality_name(temporality),
                is_monotonic: mono,
                attributes: p_attrs,
                start_time: start,
                time,
                flags,
                exemplars: ex,
            };
        match data {
            Data::Gauge(g) => {
                for p in &g.data_points {
                    let c = common(
                        "gauge",
                        0,
                        None,
                        &p.attributes,
                        p.start_time_unix_nano,
                        p.time_unix_nano,
                        p.flags,
                        &p.exemplars,
                    );
                    self.append_number(c, p.value.as_ref(), rejections);
                }
            }
            Data::Sum(s) => {
                for p in &s.data_points {
                    let c = common(
                        "sum",
                        s.aggregation_temporality,
                        Some(s.is_monotonic),
                        &p.attributes,
                        p.start_time_unix_nano,
                        p.time_unix_nano,
                        p.flags,
                        &p.exemplars,
                    );
                    self.append_number(c, p.value.as_ref(), rejections);
                }
            }
            Data::Histogram(h) => {
                for p in &h.data_points {
                    let bounds = p.explicit_bounds.len();
                    if !(p.bucket_counts.is_empty() || p.bucket_counts.len() == bounds + 1) {
                        rejections.reject(|| {
                            format!(
                                "histogram '{}' has {} bucket counts for {bounds} bounds; \
                                 want {}",
                                metric.name,
                                p.bucket_counts.len(),
                                bounds + 1
                            )
                        });
                        continue;
                    }
                    let c = common(
                        "histogram",
                        h.aggregation_temporality,
                        None,
                        &p.attributes,
                        p.start_time_unix_nano,
                        p.time_unix_nano,
                        p.flags,
                        &p.exemplars,
                    );
                    if !self.append_common(c, rejections) {
                        continue;
                    }
                    self.append_distribution(p.count, p.sum, p.min, p.max);
                    self.bucket_bounds.values().append_slice(&p.explicit_bounds);
                    self.bucket_bounds.append(true);
                    self.bucket_counts.values().append_slice(&p.bucket_counts);
                    self.bucket_counts.append(true);
                    self.append_no_exponential();
                    push_offset(&mut self.quantile_offsets, 0);
                }
            }
            Data::ExponentialHistogram(h) => {
                for p in &h.data_points {
                    let c = common(
                        "exponential_histogram",
                        h.aggregation_temporality,
                        None,
                        &p.attributes,
                        p.start_time_unix_nano,
                        p.time_unix_nano,
                        p.flags,
                        &p.exemplars,
                    );
                    if !self.append_common(c, rejections) {
                        continue;
                    }
                    self.append_distribution(p.count, p.sum, p.min, p.max);
                    self.bucket_bounds.append_null();
                    self.bucket_counts.append_null();
                    self.exp_scale.append_value(p.scale);
                    self.exp_zero_count.append_value(p.zero_count);
                    self.exp_zero_threshold.append_value(p.zero_threshold);
                    let positive = p.positive.as_ref();
                    self.exp_positive_offset
                        .append_value(positive.map_or(0, |b| b.offset));
                    self.exp_positive_counts
                        .values()
                        .append_slice(positive.map_or(&[], |b| &b.bucket_counts));
                    self.exp_positive_counts.append(true);
                    let negative = p.negative.as_ref();
                    self.exp_negative_offset
                        .append_value(negative.map_or(0, |b| b.offset));
                    self.exp_negative_counts
                        .values()
                        .append_slice(negative.map_or(&[], |b| &b.bucket_counts));
                    self.exp_negative_counts.append(true);
                    push_offset(&mut self.quantile_offsets, 0);
                }
            }
            Data::Summary(s) => {
                for p in &s.data_points {
                    let c = common(
                        "summary",
                        0,
                        None,
                        &p.attributes,
                        p.start_time_unix_nano,
                        p.time_unix_nano,
                        p.flags,
                        &[],
                    );
                    if !self.append_common(c, rejections) {
                        continue;
                    }
                    self.append_distribution(p.count, Some(p.sum), None, None);
                    self.bucket_bounds.append_null();
                    self.bucket_counts.append_null();
                    self.append_no_exponential();
                    for q in &p.quantile_values {
                        self.quantile.append_value(q.quantile);
                        self.quantile_value.append_value(q.value);
                    }
                    push_offset(&mut self.quantile_offsets, p.quantile_values.len());
                }
            }
        }
    }

    fn append_number(
        &mut self,
        c: Common<'_>,
        value: Option<&number_data_point::Value>,
        rejections: &mut Rejections,
    ) {
        if !self.append_common(c, rejections) {
            return;
        }
        match value {
            Some(number_data_point::Value::AsDouble(d)) => {
                self.value.append_value(*d);
                self.value_int.append_null();
            }
            Some(number_data_point::Value::AsInt(i)) => {
                self.value.append_value(*i as f64);
                self.value_int.append_value(*i);
            }
            None => {
                self.value.append_null();
                self.value_int.append_null();
            }
        }
        self.count.append_null();
        self.sum.append_null();
        self.min.append_null();
        self.max.append_null();
        self.bucket_bounds.append_null();
        self.bucket_counts.append_null();
        self.append_no_exponential();
        push_offset(&mut self.quantile_offsets, 0);
    }

    /// The value columns of a histogram, exponential histogram or summary point.
    fn append_distribution(
        &mut self,
        count: u64,
        sum: Option<f64>,
        min: Option<f64>,
        max: Option<f64>,
    ) {
        self.value.append_null();
        self.value_int.append_null();
        self.count.append_value(count);
        self.sum.append_option(sum);
        self.min.append_option(min);
        self.max.append_option(max);
    }

    fn append_no_exponential(&mut self) {
        self.exp_scale.append_null();
        self.exp_zero_count.append_null();
        self.exp_zero_threshold.append_null();
        self.exp_positive_offset.append_null();
        self.exp_positive_counts.append_null();
        self.exp_negative_offset.append_null();
        self.exp_negative_counts.append_null();
    }

    /// Appends the columns shared by all metric types; `false` (and nothing
    /// appended) when the point is rejected.
    fn append_common(&mut self, c: Common<'_>, rejections: &mut Rejections) -> bool {
        if let Some(reason) = invalid_exemplars(c.exemplars) {
            rejections.reject(|| reason);
            return false;
        }
        self.rs.add_row();
        self.time.append_value(nanos(c.time));
        append_ts_or_null(&mut self.start_time, c.start_time);
        self.metric_name.append_value(&c.metric.name);
        self.metric_type.append_value(c.metric_type);
        append_dict_or_null(&mut self.metric_unit, &c.metric.unit);
        append_dict_or_null(&mut self.metric_description, &c.metric.description);
        match c.temporality {
            Some(t) => self.temporality.append_value(t),
            None => self.temporality.append_null(),
        }
        self.is_monotonic.append_option(c.is_monotonic);
        self.metadata.append(&c.metric.metadata, 0);
        self.flags.append_value(c.flags);
        self.attributes.append(c.attributes, 0);
        for e in c.exemplars {
            self.exemplar_time.append_value(nanos(e.time_unix_nano));
            match e.value {
                Some(exemplar::Value::AsDouble(d)) => {
                    self.exemplar_value.append_value(d);
                    self.exemplar_value_int.append_null();
                }
                Some(exemplar::Value::AsInt(i)) => {
                    self.exemplar_value.append_value(i as f64);
                    self.exemplar_value_int.append_value(i);
                }
                None => {
                    self.exemplar_value.append_null();
                    self.exemplar_value_int.append_null();
                }
            }
            append_hex_or_null(&mut self.exemplar_trace_id, &e.trace_id);
            append_hex_or_null(&mut self.exemplar_span_id, &e.span_id);
            self.exemplar_attributes.append(&e.filtered_attributes, 0);
        }
        push_offset(&mut self.exemplar_offsets, c.exemplars.len());
        true
    }

    fn finish(mut self) -> Result<RecordBatch, ArrowError> {
        let schema = schema::metrics();
        let rs = self.rs.finish()?;
        let [metadata, _, _] = self.metadata.finish();
        let [attrs, attr_types, dropped_attrs] = self.attributes.finish();
        let quantiles = StructArray::try_new(
            schema::quantile_fields(),
            vec![
                Arc::new(self.quantile.finish()) as ArrayRef,
                Arc::new(self.quantile_value.finish()),
            ],
            None,
        )?;
        let quantiles = list_column(
            schema.field_with_name("quantiles")?.data_type(),
            self.quantile_offsets,
            Arc::new(quantiles),
        )?;
        let [ex_attrs, ex_types, _] = self.exemplar_attributes.finish();
        let exemplars = StructArray::try_new(
            schema::exemplar_fields(),
            vec![
                Arc::new(self.exemplar_time.finish()) as ArrayRef,
                Arc::new(self.exemplar_value.finish()),
                Arc::new(self.exemplar_value_int.finish()),
                Arc::new(self.exemplar_trace_id.finish()),
                Arc::new(self.exemplar_span_id.finish()),
                ex_attrs,
                ex_types,
            ],
            None,
        )?;
        let exemplars = list_column(
            schema.field_with_name("exemplars")?.data_type(),
            self.exemplar_offsets,
            Arc::new(exemplars),
        )?;
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.time.finish()),
            Arc::new(self.start_time.finish()),
            rs.service_name,
            Arc::new(self.metric_name.finish()),
            Arc::new(self.metric_type.finish()),
            Arc::new(self.metric_unit.finish()),
            Arc::new(self.metric_description.finish()),
            Arc::new(self.temporality.finish()),
            Arc::new(self.is_monotonic.finish()),
            metadata,
            Arc::new(self.flags.finish()),
            Arc::new(self.value.finish()),
            Arc::new(self.value_int.finish()),
            Arc::new(self.count.finish()),
            Arc::new(self.sum.finish()),
            Arc::new(self.min.finish()),
            Arc::new(self.max.finish()),
            Arc::new(self.bucket_bounds.finish()),
            Arc::new(self.bucket_counts.finish()),
            Arc::new(self.exp_scale.finish()),
            Arc::new(self.exp_zero_count.finish()),
            Arc::new(self.exp_zero_threshold.finish()),
            Arc::new(self.exp_positive_offset.finish()),
            Arc::new(self.exp_positive_counts.finish()),
            Arc::new(self.exp_negative_offset.finish()),
            Arc::new(self.exp_negative_counts.finish()),
            quantiles,
            exemplars,
            attrs,
            attr_types,
            dropped_attrs,
        ];
        columns.extend(rs.trailing);
        RecordBatch::try_new(schema, columns)
    }
}
