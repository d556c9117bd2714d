//! The monitoring stack in `deploy/` against real Prometheus and promtool (`.tools/bin`, from
//! `make setup`) and the whole system (`devnet::system`, which starts Prometheus scraping every
//! service every second with `deploy/prometheus/alerts.yml`).
//!
//! - The alert rules and both scrape configurations (the multi-host template and the one the
//!   devnet writes) pass `promtool check`.
//! - The Grafana dashboards are in Grafana's export format with stable uids and a datasource
//!   variable, and every query of every panel returns data from the devnet's Prometheus once a
//!   deposit and a withdrawal of each parent chain went through.
//! - The "bridge paused" and "relayer lag" alerts fire when provoked for real: a quorum of
//!   members votes `MsgSetPaused`, and one relayer's database stalls (a test transaction holds
//!   an exclusive lock on its scan cursors) while Bitcoin blocks are mined. The rules are the
//!   deployed ones except that every `for:` is rewritten to 1 s in a copy, so the test does not
//!   wait minutes; the expressions and thresholds are unchanged.

#![allow(clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{TestResult, WAIT, balance, serial, wait_until};
use ferry_devnet::accounts::{member_key, user_key};
use ferry_devnet::btcd::RegtestWallet;
use ferry_devnet::prometheus::{self, Alert, PrometheusSpec, ScrapeTarget, ServiceKind, promtool_check};
use ferry_devnet::system::System;
use ferry_parent_chains::ethereum::U256;
use ferry_types::msg::MsgSetPaused;
use ferry_types::query::WithdrawalStatus;
use ferry_types::release::eth::EthAddress;
use ferry_types::{Denom, Msg};
use serde_json::Value;
use sqlx::Connection;

const BTC: u64 = 100_000_000;
const ETH: u128 = 1_000_000_000_000_000_000;
/// A parent-chain block is mined this often while the test waits.
const PARENT_BLOCK: Duration = Duration::from_millis(400);
/// How long a withdrawal may take from burn to settled release.
const RELEASE_WAIT: Duration = Duration::from_secs(120);
/// How long a provoked alert may take to fire (a few scrapes and evaluations).
const ALERT_WAIT: Duration = Duration::from_secs(45);
/// The dashboards and their uids, which links and provisioning rely on.
const DASHBOARDS: [(&str, &str); 4] = [
    ("ferry-overview.json", "ferry-overview"),
    ("ferry-relayer.json", "ferry-relayer"),
    ("ferry-signer.json", "ferry-signer"),
    ("ferry-chain.json", "ferry-chain"),
];

fn deploy_dir() -> PathBuf {
    ferry_devnet::tools::repo_root().join("deploy")
}

fn load_dashboard(file: &str) -> TestResult<Value> {
    let path = deploy_dir().join("grafana/dashboards").join(file);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?)
}

/// Every panel, rows' nested panels included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut all = Vec::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        all.push(panel);
        all.extend(panel["panels"].as_array().into_iter().flatten());
    }
    all
}

/// `expr` with the dashboard's template variables replaced as Grafana would with "All" selected,
/// and Grafana's interval variables by a minute.
fn substitute(expr: &str, dashboard: &Value) -> String {
    let mut expr = expr.to_owned();
    for variable in dashboard["templating"]["list"].as_array().into_iter().flatten() {
        if let (Some(name), Some(all)) = (variable["name"].as_str(), variable["allValue"].as_str()) {
            expr = expr.replace(&format!("${{{name}}}"), all).replace(&format!("${name}"), all);
        }
    }
    for builtin in ["$__rate_interval", "$__interval", "$__range"] {
        expr = expr.replace(builtin, "1m");
    }
    expr
}

#[test]
fn alert_rules_and_both_scrape_configs_pass_promtool() -> TestResult {
    let rules = deploy_dir().join("prometheus/alerts.yml");
    let checked = promtool_check("rules", &rules)?;
    assert!(checked.contains("SUCCESS"), "{checked}");
    promtool_check("config", &deploy_dir().join("prometheus/prometheus.yml"))?;

    // The configuration the devnet writes, for a system laid out like `make devnet`'s.
    let dir = tempfile::tempdir()?;
    let mut targets = Vec::new();
    for member in 0..4 {
        for (kind, port) in [(ServiceKind::Chain, 26661), (ServiceKind::CometBft, 26660)] {
            targets.push(ScrapeTarget { kind, member, address: format!("127.0.0.{}:{port}", member + 1) });
        }
        for (kind, port) in [(ServiceKind::Relayer, 9464), (ServiceKind::Signer, 9465)] {
            targets.push(ScrapeTarget::from_metrics_url(
                kind,
                member,
                &format!("http://127.0.0.1:{}/metrics", port + 10 * member),
            )?);
        }
    }
    let spec = PrometheusSpec {
        dir: dir.path().to_path_buf(),
        scrape_interval: Duration::from_secs(1),
        targets,
        rule_files: vec![prometheus::deploy_alert_rules()],
    };
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, prometheus::scrape_config(&spec))?;
    let checked = promtool_check("config", &config)?;
    let deployed = std::fs::read_to_string(prometheus::deploy_alert_rules())?;
    let alert_count = deployed.lines().filter(|line| line.trim_start().starts_with("- alert:")).count();
    assert!(alert_count >= 14, "alerts.yml lost rules: {alert_count}");
    assert!(checked.contains(&format!("{alert_count} rules found")), "the devnet loads every deployed rule: {checked}");

    // promtool is not a rubber stamp: a rule with a broken expression is refused.
    let broken = dir.path().join("broken.yml");
    std::fs::write(&broken, "groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: max(\n")?;
    assert!(promtool_check("rules", &broken).is_err());
    Ok(())
}

#[test]
fn dashboards_are_grafana_exports_with_stable_uids_and_a_datasource_variable() -> TestResult {
    for (file, uid) in DASHBOARDS {
        let dashboard = load_dashboard(file)?;
        assert_eq!(dashboard["uid"], uid, "{file}");
        let inputs = dashboard["__inputs"].as_array().ok_or(format!("{file}: no __inputs"))?;
        assert!(
            inputs.iter().any(|input| input["name"] == "DS_PROMETHEUS" && input["pluginId"] == "prometheus"),
            "{file}: no DS_PROMETHEUS input"
        );
        let variables = dashboard["templating"]["list"].as_array().ok_or(format!("{file}: no templating"))?;
        assert!(
            variables
                .iter()
                .any(|v| v["name"] == "datasource" && v["type"] == "datasource" && v["query"] == "prometheus"),
            "{file}: no datasource variable"
        );
        let mut ids = std::collections::BTreeSet::new();
        let mut queries = 0;
        for panel in panels(&dashboard) {
            assert!(ids.insert(panel["id"].as_u64()), "{file}: panel id {} repeated", panel["id"]);
            if panel["type"] == "row" {
                continue;
            }
            assert_eq!(panel["datasource"]["uid"], "${datasource}", "{file}: panel {} datasource", panel["title"]);
            let targets =
                panel["targets"].as_array().ok_or(format!("{file}: panel {} has no targets", panel["title"]))?;
            assert!(!targets.is_empty(), "{file}: panel {} has no queries", panel["title"]);
            for target in targets {
                assert_eq!(target["datasource"]["uid"], "${datasource}", "{file}: {}", panel["title"]);
                assert!(target["expr"].as_str().is_some_and(|expr| !expr.is_empty()), "{file}: {}", panel["title"]);
                queries += 1;
            }
        }
        assert!(queries > 0, "{file} has no queries");
    }
    Ok(())
}

/// A deposit and a withdrawal on each parent chain, so every series has moved.
async fn bridge_both_ways(system: &mut System) -> TestResult {
    let user = user_key(0)?;
    let address = user.address();
    let client = system.client(0)?;
    let sat_before = balance(&client, &address, &Denom::sat()).await?;
    let wei_before = balance(&client, &address, &Denom::wei()).await?;
    let deposit = system.deposit_btc(&address, BTC).await?;
    system.parents.anvil.deposit_eth(&address, U256::from(2 * ETH)).await?;
    let minted = system.wait_for_deposit(&deposit, 0, PARENT_BLOCK, WAIT).await?.minted_amount.ok_or("not minted")?;
    system.wait_for_balance(&address, &Denom::sat(), sat_before + minted.get(), PARENT_BLOCK, WAIT).await?;
    system.wait_for_balance(&address, &Denom::wei(), wei_before + 2 * ETH, PARENT_BLOCK, WAIT).await?;
    let btc_destination = RegtestWallet::from_seed([0xa1; 32])?.address().to_string();
    let eth_destination = EthAddress::from_bytes([0xa2; 20]).to_string();
    let (btc, _) = system.withdraw(&user, &Denom::sat(), u128::from(BTC / 4), &btc_destination).await?;
    let (eth, _) = system.withdraw(&user, &Denom::wei(), ETH, &eth_destination).await?;
    for id in [btc, eth] {
        system.wait_for_withdrawal(id, WithdrawalStatus::Released, PARENT_BLOCK, RELEASE_WAIT).await?;
    }
    Ok(())
}

/// Every query of every dashboard panel, with what went wrong for those without data.
async fn dashboard_queries_without_data(system: &System) -> TestResult<Vec<String>> {
    let mut empty = Vec::new();
    let mut asked = 0;
    for (file, _) in DASHBOARDS {
        let dashboard = load_dashboard(file)?;
        for panel in panels(&dashboard) {
            for target in panel["targets"].as_array().into_iter().flatten() {
                let expr = substitute(target["expr"].as_str().unwrap_or_default(), &dashboard);
                asked += 1;
                match system.prometheus.query(&expr).await {
                    Ok(samples) if !samples.is_empty() => {}
                    Ok(_) => empty.push(format!("{file} / {}: `{expr}` returned nothing", panel["title"])),
                    Err(error) => empty.push(format!("{file} / {}: `{expr}`: {error:#}", panel["title"])),
                }
            }
        }
    }
    assert!(asked > 40, "only {asked} queries found in the dashboards");
    Ok(empty)
}

/// A copy of the deployed rules with every `for:` shortened to 1 s.
fn rules_with_short_for(dir: &Path) -> TestResult<PathBuf> {
    let rules = std::fs::read_to_string(prometheus::deploy_alert_rules())?;
    let mut shortened = 0;
    let text: String = rules
        .lines()
        .map(|line| {
            let trimmed = line.trim_start();
            if trimmed.starts_with("for:") {
                shortened += 1;
                format!("{}for: 1s\n", &line[..line.len() - trimmed.len()])
            } else {
                format!("{line}\n")
            }
        })
        .collect();
    assert!(shortened >= 13, "every rule has a `for:` ({shortened} found)");
    let path = dir.join("alerts-short-for.yml");
    std::fs::write(&path, text)?;
    promtool_check("rules", &path)?;
    Ok(path)
}

/// Every rule Prometheus serves (`/api/v1/rules`) once all of them come from `file` and each has
/// been evaluated without error; waits up to [`ALERT_WAIT`] for that.
async fn evaluated_rules(system: &System, file: &Path) -> TestResult<Vec<Value>> {
    let url = format!("{}/api/v1/rules", system.prometheus.url());
    let file = file.display().to_string();
    let (file, url) = (&file, &url);
    wait_until("every rule of the shortened file evaluated", ALERT_WAIT, || async move {
        let answer: Value = reqwest::get(url).await?.json().await?;
        let groups = answer["data"]["groups"].as_array().cloned().unwrap_or_default();
        let from_file = !groups.is_empty() && groups.iter().all(|group| group["file"].as_str() == Some(file.as_str()));
        let rules: Vec<Value> =
            groups.iter().flat_map(|group| group["rules"].as_array().cloned().unwrap_or_default()).collect();
        // A rule not evaluated yet reports Go's zero time and health "unknown".
        let evaluated = rules.iter().all(|rule| {
            rule["health"] == "ok" && rule["lastEvaluation"].as_str().is_some_and(|at| !at.starts_with("0001-"))
        });
        Ok((from_file && rules.len() >= 13 && evaluated).then_some(rules))
    })
    .await
}

fn firing<'a>(alerts: &'a [Alert], name: &str) -> Vec<&'a Alert> {
    alerts.iter().filter(|alert| alert.name() == name && alert.is_firing()).collect()
}

/// Member `member` votes to pause, retrying when its relayer or signer took the sequence first
/// (they sign with the same account); returns the height of the block holding the vote.
async fn vote_pause(system: &System, member: usize) -> TestResult<u64> {
    let client = system.client(member)?;
    let key = member_key(member)?;
    let vote = Msg::SetPaused(MsgSetPaused { member: key.address(), paused: true, reason: "alert drill".to_owned() });
    match ferry_signer::duty::post_duty(&client, &key, &vote).await {
        Ok((_, height)) => Ok(height),
        Err(error) => Err(format!("member {member}'s pause vote failed: {error}").into()),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_dashboard_query_has_data_and_the_paused_and_relayer_lag_alerts_fire() -> TestResult {
    let _serial = serial().await;
    let mut system = System::isolated("monitoring", 2).await?;
    bridge_both_ways(&mut system).await?;

    // Prometheus has scraped every service each second since the system started.
    let empty = dashboard_queries_without_data(&system).await?;
    assert!(empty.is_empty(), "dashboard queries without data:\n{}", empty.join("\n"));

    let rules_dir = tempfile::tempdir()?;
    let rules = rules_with_short_for(rules_dir.path())?;
    system.prometheus.set_rule_files(vec![rules.clone()]).await?;
    // Prometheus loaded the shortened rules and evaluated every one against the running system;
    // neither alert provoked below is even pending (its expression is false) once the relayers
    // caught up with the parent blocks mined fast above.
    let provoked = ["FerryBridgePaused", "FerryRelayerLag"];
    let loaded = wait_until("the alerts provoked below quiet", WAIT, || async {
        let loaded = evaluated_rules(&system, &rules).await?;
        let quiet =
            provoked.iter().all(|name| loaded.iter().any(|rule| rule["name"] == *name && rule["state"] == "inactive"));
        Ok(quiet.then_some(loaded))
    })
    .await?;
    for name in provoked {
        let rule = loaded.iter().find(|rule| rule["name"] == name).ok_or(format!("{name} not loaded"))?;
        assert_eq!(rule["state"], "inactive", "{name} before it is provoked: {rule}");
        assert_eq!(rule["alerts"].as_array().map(Vec::len), Some(0), "{rule}");
    }
    let before = system.prometheus.alerts().await?;
    for name in ["FerryBridgePaused", "FerryRelayerLag"] {
        assert!(firing(&before, name).is_empty(), "{name} fires before it is provoked: {before:?}");
    }

    // Relayer lag: member 3's relayer database stalls (its scan cursor is locked) while Bitcoin
    // moves on; the relayer process and its metrics stay up, its scanned height does not move.
    let database = system.relayer_database_url(3)?;
    let mut stall = sqlx::PgConnection::connect(&database).await?;
    sqlx::query("BEGIN").execute(&mut stall).await?;
    sqlx::query("LOCK TABLE relayer_cursors IN ACCESS EXCLUSIVE MODE").execute(&mut stall).await?;
    system.parents.btcd.mine(10).await?;
    system
        .prometheus
        .wait_for_alerts(ALERT_WAIT, |alerts| {
            firing(alerts, "FerryRelayerLag").iter().any(|alert| {
                alert.labels.get("member").map(String::as_str) == Some("3")
                    && alert.labels.get("chain").map(String::as_str) == Some("btc")
            })
        })
        .await?;
    // The others scan the new blocks within a poll or two: only the stalled relayer keeps lagging.
    let only_member_3 = |alerts: &[Alert]| {
        let members: BTreeSet<&str> = firing(alerts, "FerryRelayerLag")
            .iter()
            .filter_map(|alert| alert.labels.get("member"))
            .map(String::as_str)
            .collect();
        members == BTreeSet::from(["3"])
    };
    system.prometheus.wait_for_alerts(ALERT_WAIT, only_member_3).await?;
    sqlx::query("ROLLBACK").execute(&mut stall).await?;
    stall.close().await?;

    // Bridge paused: a quorum (3 of 4) of members vote.
    let mut voted_at = 0;
    for member in 0..3 {
        voted_at = vote_pause(&system, member).await?;
    }
    // Read from node 0 once it has the block holding the last vote (it was sent to node 2).
    let reader = system.client(0)?;
    reader.wait_for_height(voted_at, WAIT).await?;
    let status: ferry_types::query::BridgeStatus =
        reader.query(ferry_types::query::BRIDGE_PATH, None).await?.ok_or("no bridge status")?;
    assert!(status.paused, "the quorum's votes paused the bridge: {status:?}");
    system.prometheus.wait_for_alerts(ALERT_WAIT, |alerts| !firing(alerts, "FerryBridgePaused").is_empty()).await?;
    Ok(())
}
