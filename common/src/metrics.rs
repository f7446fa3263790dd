//! Writing metrics at scrape time.
//!
//! smolder's figures live in the components that own them (the store's
//! counters, the SLO engine's last snapshot, the outbox); each crate exposes
//! them through a `prometheus_client` collector that reads them when
//! `/metrics` is scraped, so nothing is copied between scrapes and nothing
//! can drift. These are the collectors' shared encoders.

use prometheus_client::encoding::{
    DescriptorEncoder, EncodeCounterValue, EncodeGaugeValue, EncodeLabelSet, EncodeMetric as _,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// A gauge family: one sample per label set.
pub fn gauges<S: EncodeLabelSet, N: EncodeGaugeValue + Copy>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: &[(S, N)],
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in samples {
        ConstGauge::new(*value).encode(metric.encode_family(labels)?)?;
    }
    Ok(())
}

/// A gauge without labels.
pub fn gauge<N: EncodeGaugeValue>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: N,
) -> Result<(), std::fmt::Error> {
    let metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    ConstGauge::new(value).encode(metric)
}

/// A counter family (`name_total`): one sample per label set.
pub fn counters<S: EncodeLabelSet, N: EncodeCounterValue + Copy>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: &[(S, N)],
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in samples {
        ConstCounter::new(*value).encode(metric.encode_family(labels)?)?;
    }
    Ok(())
}

/// A counter without labels (`name_total`).
pub fn counter<N: EncodeCounterValue>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: N,
) -> Result<(), std::fmt::Error> {
    let metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    ConstCounter::new(value).encode(metric)
}

#[cfg(test)]
mod tests {
    use prometheus_client::collector::Collector;
    use prometheus_client::registry::Registry;

    use super::*;

    #[derive(Debug)]
    struct Demo;

    impl Collector for Demo {
        fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
            gauge(&mut e, "level", "A level", 3_i64)?;
            gauges(
                &mut e,
                "rows",
                "Rows by table",
                &[([("table", "spans")], 2.5)],
            )?;
            counter(&mut e, "flushes", "Flushes", 7_u64)?;
            counters(
                &mut e,
                "sent",
                "Sent by outcome",
                &[([("outcome", "ok")], 1_u64)],
            )
        }
    }

    #[test]
    fn collectors_write_gauges_and_counters_in_openmetrics_text() {
        let mut registry = Registry::with_prefix("smolder");
        registry.register_collector(Box::new(Demo));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            "# TYPE smolder_level gauge\nsmolder_level 3\n",
            "smolder_rows{table=\"spans\"} 2.5\n",
            "# TYPE smolder_flushes counter\nsmolder_flushes_total 7\n",
            "smolder_sent_total{outcome=\"ok\"} 1\n",
        ] {
            assert!(text.contains(line), "{line:?} missing from:\n{text}");
        }
    }
}
