//! A Prometheus server for a devnet: writes the scrape configuration for a set of service
//! endpoints (one job per service kind, a `member` label on every target, the same layout as the
//! multi-host template in `deploy/prometheus/prometheus.yml`), starts `.tools/bin/prometheus` on a
//! free loopback port with an empty TSDB in its directory, and answers instant queries and the
//! alert list through the HTTP API.
//!
//! It is stopped on drop (SIGKILL: the TSDB is disposable) unless [`Prometheus::detach`]ed for
//! `make devnet`. It binds only 127.0.0.1 and scrapes only the targets it is given. It holds no
//! alert rules of its own: rule files are passed in (the devnet uses `deploy/prometheus/alerts.yml`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::process::{ServiceCommand, ServiceProcess, free_loopback_port};

/// The kinds of service Prometheus scrapes; each is one scrape job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ServiceKind {
    /// The `ferry-chain` application (`ferry_chain_*`).
    Chain,
    /// CometBFT (`cometbft_*`).
    CometBft,
    /// `ferry-relayer` (`ferry_relayer_*`).
    Relayer,
    /// `ferry-signer` (`ferry_signer_*`).
    Signer,
}

impl ServiceKind {
    /// Every kind, in job order.
    pub const ALL: [ServiceKind; 4] =
        [ServiceKind::Chain, ServiceKind::CometBft, ServiceKind::Relayer, ServiceKind::Signer];

    /// The scrape job's name (the `job` label the alert rules and dashboards select on).
    pub fn job(self) -> &'static str {
        match self {
            ServiceKind::Chain => "ferry-chain",
            ServiceKind::CometBft => "cometbft",
            ServiceKind::Relayer => "ferry-relayer",
            ServiceKind::Signer => "ferry-signer",
        }
    }
}

/// One endpoint to scrape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScrapeTarget {
    /// What runs there.
    pub kind: ServiceKind,
    /// The federation member (validator index) it belongs to: the `member` label.
    pub member: usize,
    /// `host:port` of its `/metrics` endpoint: the `instance` label.
    pub address: String,
}

impl ScrapeTarget {
    /// The target behind a metrics URL such as `http://127.0.0.1:9100/metrics`.
    ///
    /// # Errors
    /// When the URL is not `http://host:port/metrics`.
    pub fn from_metrics_url(kind: ServiceKind, member: usize, url: &str) -> anyhow::Result<ScrapeTarget> {
        let parsed = reqwest::Url::parse(url).with_context(|| format!("metrics URL `{url}`"))?;
        let (Some(host), Some(port)) = (parsed.host_str(), parsed.port_or_known_default()) else {
            bail!("metrics URL `{url}` has no host or port");
        };
        if parsed.scheme() != "http" || parsed.path() != "/metrics" {
            bail!("metrics URL `{url}`: expected http://host:port/metrics");
        }
        Ok(ScrapeTarget { kind, member, address: format!("{host}:{port}") })
    }
}

/// How to run Prometheus.
#[derive(Clone, Debug)]
pub struct PrometheusSpec {
    /// Holds `prometheus.yml`, the TSDB (`data/`, emptied at every start) and `prometheus.log`.
    pub dir: PathBuf,
    /// Scrape and rule evaluation interval.
    pub scrape_interval: Duration,
    /// What to scrape.
    pub targets: Vec<ScrapeTarget>,
    /// Alert rule files (absolute paths).
    pub rule_files: Vec<PathBuf>,
}

/// `deploy/prometheus/alerts.yml`, the rules an operator deploys.
pub fn deploy_alert_rules() -> PathBuf {
    crate::tools::repo_root().join("deploy/prometheus/alerts.yml")
}

/// A Prometheus duration (`1500ms`, `2s`).
fn prometheus_duration(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}ms", duration.as_millis())
    }
}

/// The scrape configuration for `spec`: one job per service kind present, one static group per
/// target labelled with its `member`; `instance` is the target's `host:port`.
pub fn scrape_config(spec: &PrometheusSpec) -> String {
    let interval = prometheus_duration(spec.scrape_interval);
    // Prometheus refuses a scrape timeout longer than the interval.
    let timeout = prometheus_duration(spec.scrape_interval.min(Duration::from_secs(10)));
    let mut yaml = String::from("# Written by ferry-devnet (devnet/src/prometheus.rs); the multi-host template is\n");
    yaml.push_str("# deploy/prometheus/prometheus.yml.\n");
    let _ = writeln!(
        yaml,
        "global:\n  scrape_interval: {interval}\n  scrape_timeout: {timeout}\n  evaluation_interval: {interval}\n  external_labels:\n    deployment: devnet"
    );
    if !spec.rule_files.is_empty() {
        yaml.push_str("rule_files:\n");
        for file in &spec.rule_files {
            let _ = writeln!(yaml, "  - {}", yaml_string(&file.display().to_string()));
        }
    }
    yaml.push_str("scrape_configs:\n");
    for kind in ServiceKind::ALL {
        let targets: Vec<&ScrapeTarget> = spec.targets.iter().filter(|target| target.kind == kind).collect();
        if targets.is_empty() {
            continue;
        }
        let _ = writeln!(yaml, "  - job_name: {}\n    static_configs:", kind.job());
        for target in targets {
            let _ = writeln!(
                yaml,
                "      - targets: [{}]\n        labels:\n          member: \"{}\"",
                yaml_string(&target.address),
                target.member
            );
        }
    }
    yaml
}

/// A double-quoted YAML string.
fn yaml_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The `prometheus` binary: `$FERRY_PROMETHEUS_BIN` or `.tools/bin/prometheus` (`make setup`).
///
/// # Errors
/// When it is not installed.
pub fn binary() -> anyhow::Result<PathBuf> {
    tool("prometheus", "FERRY_PROMETHEUS_BIN")
}

/// The `promtool` binary: `$FERRY_PROMTOOL_BIN` or `.tools/bin/promtool` (`make setup`).
///
/// # Errors
/// When it is not installed.
pub fn promtool() -> anyhow::Result<PathBuf> {
    tool("promtool", "FERRY_PROMTOOL_BIN")
}

fn tool(name: &str, env_var: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::var_os(env_var)
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::tools::repo_root().join(".tools/bin").join(name));
    path.exists()
        .then_some(path.clone())
        .with_context(|| format!("{name} not found at {}: run `make setup`", path.display()))
}

/// One series of an instant query's answer.
#[derive(Clone, Debug, Deserialize)]
pub struct Sample {
    /// Its labels.
    pub metric: std::collections::BTreeMap<String, String>,
    /// `[unix time, "value"]`.
    pub value: (f64, String),
}

/// One alert, as `/api/v1/alerts` lists it.
#[derive(Clone, Debug, Deserialize)]
pub struct Alert {
    /// Its labels (`alertname`, `severity`, and the series' own).
    pub labels: std::collections::BTreeMap<String, String>,
    /// `pending` or `firing`.
    pub state: String,
}

impl Alert {
    /// The alert rule's name.
    pub fn name(&self) -> &str {
        self.labels.get("alertname").map_or("", String::as_str)
    }

    /// Whether it fires (held for its rule's `for:`).
    pub fn is_firing(&self) -> bool {
        self.state == "firing"
    }
}

#[derive(Deserialize)]
struct ApiAnswer<T> {
    status: String,
    data: Option<T>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct QueryData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct AlertsData {
    alerts: Vec<Alert>,
}

/// How long Prometheus may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A running Prometheus.
#[derive(Debug)]
pub struct Prometheus {
    spec: PrometheusSpec,
    port: u16,
    process: ServiceProcess,
    http: reqwest::Client,
}

impl Prometheus {
    /// Writes the configuration, starts Prometheus with an empty TSDB and returns once it is ready.
    ///
    /// # Errors
    /// When it is not installed, the files cannot be written, or it does not become ready (the
    /// error quotes the end of its log).
    pub async fn start(spec: PrometheusSpec) -> anyhow::Result<Prometheus> {
        let binary = binary()?;
        std::fs::create_dir_all(&spec.dir).with_context(|| format!("creating {}", spec.dir.display()))?;
        let data = spec.dir.join("data");
        if data.exists() {
            std::fs::remove_dir_all(&data).with_context(|| format!("emptying {}", data.display()))?;
        }
        let config = spec.dir.join("prometheus.yml");
        std::fs::write(&config, scrape_config(&spec)).with_context(|| format!("writing {}", config.display()))?;
        let port = free_loopback_port()?;
        let command = ServiceCommand::new(binary, spec.dir.join("prometheus.log"))
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.enable-lifecycle")
            .arg("--storage.tsdb.retention.time=2d");
        let process = ServiceProcess::start(command)?;
        let prometheus = Prometheus { spec, port, process, http: reqwest::Client::new() };
        prometheus.wait_ready().await?;
        Ok(prometheus)
    }

    async fn wait_ready(&self) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        loop {
            let ready = self.http.get(format!("{}/-/ready", self.url())).send().await;
            if ready.is_ok_and(|response| response.status().is_success()) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("Prometheus not ready after {READY_TIMEOUT:?}; log ends with:\n{}", self.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.spec.dir.join("prometheus.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Its base URL (`http://127.0.0.1:<port>`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What it runs with.
    pub fn spec(&self) -> &PrometheusSpec {
        &self.spec
    }

    /// Its configuration file.
    pub fn config_path(&self) -> PathBuf {
        self.spec.dir.join("prometheus.yml")
    }

    /// Replaces the rule files and reloads the configuration (`POST /-/reload`).
    ///
    /// # Errors
    /// When the configuration cannot be written or Prometheus refuses it (a bad rule file).
    pub async fn set_rule_files(&mut self, rule_files: Vec<PathBuf>) -> anyhow::Result<()> {
        self.spec.rule_files = rule_files;
        std::fs::write(self.config_path(), scrape_config(&self.spec))?;
        let response = self.http.post(format!("{}/-/reload", self.url())).send().await?;
        if !response.status().is_success() {
            let status = response.status();
            bail!("Prometheus refused the new configuration ({status}): {}", response.text().await.unwrap_or_default());
        }
        Ok(())
    }

    /// An instant query's series (`vector` answers; a `scalar` answer is one series without labels).
    ///
    /// # Errors
    /// When the query is malformed (Prometheus's error is quoted) or the request fails.
    pub async fn query(&self, expr: &str) -> anyhow::Result<Vec<Sample>> {
        let mut url = reqwest::Url::parse(&format!("{}/api/v1/query", self.url()))?;
        url.query_pairs_mut().append_pair("query", expr);
        let data: QueryData = self.api(url).await.with_context(|| format!("query `{expr}`"))?;
        match data.result_type.as_str() {
            "vector" | "matrix" => Ok(serde_json::from_value(data.result)?),
            "scalar" | "string" => {
                let value: (f64, String) = serde_json::from_value(data.result)?;
                Ok(vec![Sample { metric: Default::default(), value }])
            }
            other => bail!("query `{expr}`: unexpected result type `{other}`"),
        }
    }

    /// Every alert pending or firing.
    ///
    /// # Errors
    /// When the request fails.
    pub async fn alerts(&self) -> anyhow::Result<Vec<Alert>> {
        let url = reqwest::Url::parse(&format!("{}/api/v1/alerts", self.url()))?;
        let data: AlertsData = self.api(url).await?;
        Ok(data.alerts)
    }

    /// Waits until `until` holds for the firing alerts, checking every scrape interval.
    ///
    /// # Errors
    /// When it does not within `timeout` (the error lists the alerts there were), or requests fail.
    pub async fn wait_for_alerts(
        &self,
        timeout: Duration,
        until: impl Fn(&[Alert]) -> bool,
    ) -> anyhow::Result<Vec<Alert>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let alerts = self.alerts().await?;
            if until(&alerts) {
                return Ok(alerts);
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("alerts not as expected after {timeout:?}: {alerts:?}");
            }
            tokio::time::sleep(self.spec.scrape_interval).await;
        }
    }

    async fn api<T: serde::de::DeserializeOwned>(&self, url: reqwest::Url) -> anyhow::Result<T> {
        let answer: ApiAnswer<T> = self.http.get(url).send().await?.json().await?;
        match (answer.status.as_str(), answer.data) {
            ("success", Some(data)) => Ok(data),
            _ => bail!("Prometheus answered {}: {}", answer.status, answer.error.unwrap_or_default()),
        }
    }

    /// Stops it (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Leaves it running past this handle (for `make devnet`); returns its PID.
    pub fn detach(self) -> Option<u32> {
        self.process.detach()
    }

    /// Its PID while running.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }
}

/// Runs `promtool check <what> <file>` (`config` or `rules`); returns its output.
///
/// # Errors
/// When promtool is missing or reports a problem (its output is quoted).
pub fn promtool_check(what: &str, file: &Path) -> anyhow::Result<String> {
    let output = std::process::Command::new(promtool()?)
        .args(["check", what])
        .arg(file)
        .output()
        .with_context(|| format!("running promtool check {what}"))?;
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    if !output.status.success() {
        bail!("promtool check {what} {} failed:\n{text}", file.display());
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scrape_config_has_a_job_per_kind_and_a_member_label_per_target() -> anyhow::Result<()> {
        let spec = PrometheusSpec {
            dir: PathBuf::from("/tmp/p"),
            scrape_interval: Duration::from_secs(1),
            targets: vec![
                ScrapeTarget::from_metrics_url(ServiceKind::Signer, 1, "http://127.0.0.1:4001/metrics")?,
                ScrapeTarget { kind: ServiceKind::Chain, member: 0, address: "127.0.9.1:26661".to_owned() },
                ScrapeTarget { kind: ServiceKind::Chain, member: 1, address: "127.0.9.2:26661".to_owned() },
            ],
            rule_files: vec![PathBuf::from("/x/alerts.yml")],
        };
        let yaml = scrape_config(&spec);
        assert!(yaml.contains("scrape_interval: 1s\n  scrape_timeout: 1s\n"), "{yaml}");
        assert!(yaml.contains("rule_files:\n  - \"/x/alerts.yml\"\n"), "{yaml}");
        let chain = yaml.find("job_name: ferry-chain").context("no chain job")?;
        let signer = yaml.find("job_name: ferry-signer").context("no signer job")?;
        assert!(chain < signer, "jobs in kind order: {yaml}");
        assert!(!yaml.contains("job_name: cometbft"), "no targets, no job: {yaml}");
        assert!(yaml.contains("targets: [\"127.0.9.2:26661\"]\n        labels:\n          member: \"1\""), "{yaml}");
        assert!(yaml.contains("targets: [\"127.0.0.1:4001\"]"), "{yaml}");
        Ok(())
    }

    #[test]
    fn only_plain_metrics_urls_are_targets() {
        for bad in ["https://127.0.0.1:1/metrics", "http://127.0.0.1:1/other", "not a url"] {
            assert!(ScrapeTarget::from_metrics_url(ServiceKind::Relayer, 0, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_are_written_in_prometheus_units() {
        assert_eq!(prometheus_duration(Duration::from_secs(15)), "15s");
        assert_eq!(prometheus_duration(Duration::from_millis(1500)), "1500ms");
    }
}
