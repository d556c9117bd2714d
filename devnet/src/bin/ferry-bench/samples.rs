//! Latency samples and the percentiles the benchmarks print: a p95 only from enough samples for
//! it to differ from the maximum, otherwise the maximum, named as such.

/// The fewest samples from which a nearest-rank p95 is not simply the maximum.
pub const MIN_SAMPLES_FOR_P95: usize = 20;

/// Latency samples of one kind (seconds, blocks, …).
#[derive(Clone, Debug, Default)]
pub struct Samples(Vec<f64>);

impl Samples {
    /// Records one sample.
    pub fn push(&mut self, value: f64) {
        self.0.push(value);
    }

    /// The `p`th percentile by nearest rank; NaN when there are no samples.
    pub fn percentile(&self, p: f64) -> f64 {
        let mut sorted = self.0.clone();
        sorted.sort_by(f64::total_cmp);
        if sorted.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
        sorted.get(rank.min(sorted.len() - 1)).copied().unwrap_or(f64::NAN)
    }

    /// The tail figure and its name: `("p95", p95)` with at least [`MIN_SAMPLES_FOR_P95`]
    /// samples, else `("max", maximum)`.
    pub fn tail(&self) -> (&'static str, f64) {
        if self.0.len() >= MIN_SAMPLES_FOR_P95 {
            ("p95", self.percentile(95.0))
        } else {
            ("max", self.percentile(100.0))
        }
    }

    /// `p50 <x>  p95 <y>` (or `max <y>`), with `decimals` decimals.
    pub fn summary(&self, decimals: usize) -> String {
        let (tail_name, tail) = self.tail();
        format!("p50 {:.decimals$}  {tail_name} {tail:.decimals$}", self.percentile(50.0))
    }

    /// How many samples there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_few_samples_report_the_maximum_as_such() {
        let mut samples = Samples::default();
        for value in 1..=8 {
            samples.push(f64::from(value));
        }
        assert_eq!(samples.tail(), ("max", 8.0));
        assert_eq!(samples.summary(0), "p50 5  max 8");
        for value in 9..=20 {
            samples.push(f64::from(value));
        }
        assert_eq!(samples.tail(), ("p95", 19.0));
    }
}
