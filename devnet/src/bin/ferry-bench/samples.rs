//! Latency samples and the percentiles the benchmarks print: a p95 only from enough samples for
//! it to differ from the maximum, otherwise the maximum, named as such.

/// The fewest samples from which a nearest-rank p95 is not simply the maximum: the rank
/// ⌈0.95 n⌉ falls below n only from n = 20.
pub const MIN_SAMPLES_FOR_P95: usize = 20;

/// Latency samples of one kind (seconds, blocks, …).
#[derive(Clone, Debug, Default)]
pub struct Samples(Vec<f64>);

impl Samples {
    /// Records one sample.
    pub fn push(&mut self, value: f64) {
        self.0.push(value);
    }

    /// The `percent`th percentile by nearest rank (the ⌈percent · n / 100⌉th smallest sample,
    /// at least the first); NaN when there are no samples.
    pub fn percentile(&self, percent: usize) -> f64 {
        let mut sorted = self.0.clone();
        sorted.sort_by(f64::total_cmp);
        let rank = (percent.min(100) * sorted.len()).div_ceil(100).max(1);
        sorted.get(rank - 1).copied().unwrap_or(f64::NAN)
    }

    /// The tail figure and its name: `("p95", p95)` with at least [`MIN_SAMPLES_FOR_P95`]
    /// samples, else `("max", maximum)`.
    pub fn tail(&self) -> (&'static str, f64) {
        if self.0.len() >= MIN_SAMPLES_FOR_P95 { ("p95", self.percentile(95)) } else { ("max", self.percentile(100)) }
    }

    /// `p50 <x>  p95 <y>` (or `max <y>`), with `decimals` decimals.
    pub fn summary(&self, decimals: usize) -> String {
        let (tail_name, tail) = self.tail();
        format!("p50 {:.decimals$}  {tail_name} {tail:.decimals$}", self.percentile(50))
    }

    /// How many samples there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Adds every sample of `other`.
    pub fn extend(&mut self, other: &Samples) {
        self.0.extend_from_slice(&other.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_to(n: u32) -> Samples {
        let mut samples = Samples::default();
        for value in 1..=n {
            samples.push(f64::from(value));
        }
        samples
    }

    #[test]
    fn too_few_samples_report_the_maximum_as_such() {
        assert_eq!(one_to(8).tail(), ("max", 8.0));
        assert_eq!(one_to(8).summary(0), "p50 4  max 8");
        assert_eq!(one_to(19).tail(), ("max", 19.0));
    }

    #[test]
    fn p95_from_twenty_samples_is_not_the_maximum() {
        assert_eq!(one_to(20).tail(), ("p95", 19.0));
        assert_eq!(one_to(100).tail(), ("p95", 95.0));
    }

    #[test]
    fn percentiles_follow_the_nearest_rank() {
        let samples = one_to(19);
        // ⌈0.95 · 19⌉ = 19: below 20 samples the p95 would be the maximum.
        assert_eq!(samples.percentile(95), 19.0);
        assert_eq!(samples.percentile(50), 10.0);
        assert_eq!(samples.percentile(0), 1.0);
        assert!(Samples::default().percentile(50).is_nan());
    }
}
