//! A Prometheus registry that registers each metric as it is created, and renders the text
//! exposition. Each daemon still declares its own metrics, in its own `metrics.rs`.

use std::time::{SystemTime, UNIX_EPOCH};

use prometheus::core::Collector;
use prometheus::{
    Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// A daemon's metric registry.
#[derive(Clone, Debug, Default)]
pub struct MetricsRegistry {
    registry: Registry,
}

impl MetricsRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        MetricsRegistry { registry: Registry::new() }
    }

    /// Registers `metric` and hands it back.
    ///
    /// # Errors
    /// When a metric of that name is registered already.
    pub fn register<M: Collector + Clone + 'static>(&self, metric: M) -> Result<M, prometheus::Error> {
        self.registry.register(Box::new(metric.clone()))?;
        Ok(metric)
    }

    /// A registered gauge.
    ///
    /// # Errors
    /// When the name is malformed or registered already.
    pub fn gauge(&self, name: &str, help: &str) -> Result<Gauge, prometheus::Error> {
        self.register(Gauge::new(name, help)?)
    }

    /// A registered integer gauge.
    ///
    /// # Errors
    /// When the name is malformed or registered already.
    pub fn int_gauge(&self, name: &str, help: &str) -> Result<IntGauge, prometheus::Error> {
        self.register(IntGauge::new(name, help)?)
    }

    /// A registered integer counter.
    ///
    /// # Errors
    /// When the name is malformed or registered already.
    pub fn int_counter(&self, name: &str, help: &str) -> Result<IntCounter, prometheus::Error> {
        self.register(IntCounter::new(name, help)?)
    }

    /// A registered gauge family with `labels`.
    ///
    /// # Errors
    /// When the name or labels are malformed, or the name is registered already.
    pub fn gauge_vec(&self, name: &str, help: &str, labels: &[&str]) -> Result<GaugeVec, prometheus::Error> {
        self.register(GaugeVec::new(Opts::new(name, help), labels)?)
    }

    /// A registered integer gauge family with `labels`.
    ///
    /// # Errors
    /// When the name or labels are malformed, or the name is registered already.
    pub fn int_gauge_vec(&self, name: &str, help: &str, labels: &[&str]) -> Result<IntGaugeVec, prometheus::Error> {
        self.register(IntGaugeVec::new(Opts::new(name, help), labels)?)
    }

    /// A registered integer counter family with `labels`.
    ///
    /// # Errors
    /// When the name or labels are malformed, or the name is registered already.
    pub fn int_counter_vec(&self, name: &str, help: &str, labels: &[&str]) -> Result<IntCounterVec, prometheus::Error> {
        self.register(IntCounterVec::new(Opts::new(name, help), labels)?)
    }

    /// A registered histogram family with `buckets` and `labels`.
    ///
    /// # Errors
    /// When the name, buckets or labels are malformed, or the name is registered already.
    pub fn histogram_vec(
        &self,
        name: &str,
        help: &str,
        buckets: &[f64],
        labels: &[&str],
    ) -> Result<HistogramVec, prometheus::Error> {
        self.register(HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets.to_vec()), labels)?)
    }

    /// The Prometheus text exposition of every registered metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        // Only malformed metric families fail to encode, which the constructors rule out.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buffer);
        String::from_utf8_lossy(&buffer).into_owned()
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it), the unit of timestamp gauges.
pub fn now_seconds() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_metrics_render_and_names_register_once() -> Result<(), prometheus::Error> {
        let registry = MetricsRegistry::new();
        let counter = registry.int_counter_vec("ferry_test_total", "Test counter", &["chain"])?;
        counter.with_label_values(&["btc"]).inc();
        assert!(registry.render().contains(r#"ferry_test_total{chain="btc"} 1"#));
        assert!(registry.int_gauge("ferry_test_total", "again").is_err());
        Ok(())
    }
}
