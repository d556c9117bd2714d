//! Ferry services as child processes: one home for how the devnet finds a service binary, starts
//! it and stops it, shared by the relayer and signer harnesses ([`crate::relayer`],
//! [`crate::signer`]), which keep only their own configuration writing and accessors.
//!
//! A [`ServiceCommand`] says what to run (binary, arguments, environment, log file); a
//! [`ServiceProcess`] runs it in its own process group with stdin closed and stdout and stderr
//! appended to the log, and stops it with SIGKILL — on [`ServiceProcess::kill`] and on drop,
//! like a crash (the services are crash-safe). [`ServiceProcess::restart`] runs the same
//! command again, so a restarted service keeps its configuration and ports.
//!
//! Services listen on port 0 — the operating system picks a free port as the socket is bound,
//! so no other process can take it between a probe and the bind — and announce the address in
//! their log ([`LISTENING`]); [`ServiceProcess::start_on_any_port`] reads it and writes it into
//! the service's configuration, so a restart binds the same port.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The log message with which `ferry-daemon`'s endpoint announces its bound address (as the
/// field `address=<ip:port>`), logged at `info` by target [`LISTENING_TARGET`].
pub const LISTENING: &str = "metrics and health endpoint listening";
/// The log target of [`LISTENING`], kept at `info` whatever filter a test sets.
pub const LISTENING_TARGET: &str = "ferry_daemon::endpoint";
/// How long a starting service may take to announce its address.
const ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(60);
/// A loopback address on port 0: the operating system picks the port as the service binds it.
pub const ANY_LOOPBACK_PORT: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

/// The workspace binary `name`: the path in the environment variable `env_var` when set, else
/// next to the running executable (tests run from `target/<profile>/deps`, whose parent holds
/// the binaries), else in `target/debug` of the repository.
///
/// # Errors
/// When `env_var` is unset and the binary was not built.
pub fn binary_path(name: &str, env_var: &str) -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(env_var) {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("executable has no directory")?;
    let dir = if dir.ends_with("deps") { dir.parent().unwrap_or(dir) } else { dir };
    let candidate = dir.join(name);
    if candidate.exists() {
        return Ok(candidate);
    }
    let fallback = crate::tools::repo_root().join("target/debug").join(name);
    fallback.exists().then_some(fallback).with_context(|| format!("{name} binary not found: run `cargo build --bins`"))
}

/// A loopback port free at the time of the call (the operating system's pick; another process
/// may take it before the service binds it).
///
/// # Errors
/// When no port can be bound.
pub fn free_loopback_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// What a [`ServiceProcess`] runs: a binary with arguments and environment, its output appended
/// to a log file, and `RUST_LOG` read from a service-specific variable at every start.
#[derive(Clone, Debug)]
pub struct ServiceCommand {
    binary: PathBuf,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    log_filter_var: Option<String>,
    log: PathBuf,
}

impl ServiceCommand {
    /// Runs `binary` without arguments, appending stdout and stderr to `log`.
    pub fn new(binary: impl Into<PathBuf>, log: impl Into<PathBuf>) -> Self {
        ServiceCommand {
            binary: binary.into(),
            args: Vec::new(),
            envs: Vec::new(),
            log_filter_var: None,
            log: log.into(),
        }
    }

    /// Adds an argument.
    #[must_use]
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Sets an environment variable (for values kept out of argv and files, such as database URLs).
    #[must_use]
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// Sets the service's `RUST_LOG` to the value of `var` when the service starts (`info` when
    /// `var` is unset), so a test run can raise one service's log level.
    #[must_use]
    pub fn log_filter_from(mut self, var: impl Into<String>) -> Self {
        self.log_filter_var = Some(var.into());
        self
    }

    fn spawn(&self) -> anyhow::Result<Child> {
        let log = || OpenOptions::new().create(true).append(true).open(&self.log);
        let mut command = Command::new(&self.binary);
        command.args(&self.args).envs(self.envs.iter().map(|(key, value)| (key, value)));
        if let Some(var) = &self.log_filter_var {
            let filter = std::env::var(var).unwrap_or_else(|_| "info".to_owned());
            command.env("RUST_LOG", format!("{filter},{LISTENING_TARGET}=info"));
        }
        command
            .stdin(Stdio::null())
            .stdout(log()?)
            .stderr(log()?)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))
    }
}

/// A running service: started from a [`ServiceCommand`] in a new process group, killed with
/// SIGKILL on drop unless [`ServiceProcess::detach`]ed.
#[derive(Debug)]
pub struct ServiceProcess {
    command: ServiceCommand,
    child: Option<Child>,
    /// The log's length when the running process was started: what it logs comes after.
    log_offset: u64,
}

impl ServiceProcess {
    /// Starts `command`.
    ///
    /// # Errors
    /// When the log cannot be opened or the process cannot start.
    pub fn start(command: ServiceCommand) -> anyhow::Result<ServiceProcess> {
        let log_offset = log_length(&command.log);
        let child = command.spawn()?;
        Ok(ServiceProcess { command, child: Some(child), log_offset })
    }

    /// Starts a service whose configuration file names its listen address: `write_config` writes
    /// it first with [`ANY_LOOPBACK_PORT`], and again with the address the service announced, so
    /// a [`restart`](Self::restart) binds the same port. Returns the process and that address.
    ///
    /// # Errors
    /// When `write_config` fails, or the process cannot start or exits before it listens.
    pub fn start_on_any_port(
        command: ServiceCommand,
        write_config: impl Fn(SocketAddr) -> anyhow::Result<()>,
    ) -> anyhow::Result<(ServiceProcess, SocketAddr)> {
        write_config(ANY_LOOPBACK_PORT)?;
        let mut process = ServiceProcess::start(command)?;
        let address = process.announced_address()?;
        write_config(address)?;
        Ok((process, address))
    }

    /// The address the running process announced with [`LISTENING`] (it was told to listen on
    /// port 0), waiting up to a minute for it.
    ///
    /// # Errors
    /// When the process exits or says nothing within the minute (the log is named).
    fn announced_address(&mut self) -> anyhow::Result<SocketAddr> {
        let started = Instant::now();
        loop {
            if let Some(address) = announced_in(&self.command.log, self.log_offset) {
                return Ok(address);
            }
            if !self.is_running() {
                bail!(
                    "{} exited before it listened; see {}",
                    self.command.binary.display(),
                    self.command.log.display()
                );
            }
            if started.elapsed() > ANNOUNCE_TIMEOUT {
                bail!(
                    "{} announced no address within {ANNOUNCE_TIMEOUT:?}; see {}",
                    self.command.binary.display(),
                    self.command.log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the service with SIGKILL (a crash) and reaps it; nothing when it is not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again (after [`ServiceProcess::kill`], or killing it first) with the same command.
    ///
    /// # Errors
    /// When the process cannot start.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        self.log_offset = log_length(&self.command.log);
        self.child = Some(self.command.spawn()?);
        Ok(())
    }

    /// Whether the process is running (started and not exited).
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Leaves the service running past this handle (for `make devnet`); returns its PID.
    pub fn detach(mut self) -> Option<u32> {
        self.child.take().map(|child| child.id())
    }

    /// Its PID while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

fn log_length(log: &Path) -> u64 {
    std::fs::metadata(log).map_or(0, |metadata| metadata.len())
}

/// The address of the first [`LISTENING`] line in `log` after `offset`.
fn announced_in(log: &Path, offset: u64) -> Option<SocketAddr> {
    let mut file = std::fs::File::open(log).ok()?;
    file.seek(SeekFrom::Start(offset)).ok()?;
    let mut text = Vec::new();
    file.read_to_end(&mut text).ok()?;
    String::from_utf8_lossy(&text).lines().find_map(|line| {
        let line = strip_ansi(line);
        if !line.contains(LISTENING) {
            return None;
        }
        line.split_whitespace().find_map(|field| field.strip_prefix("address=")?.parse().ok())
    })
}

/// `line` without ANSI escape sequences (`ESC [ … letter`), as a coloured log writes them.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_announced_address_is_read_from_plain_and_coloured_logs_after_the_offset() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let log = dir.path().join("service.log");
        let earlier = format!("2026-12-04T00:00:00Z  INFO {LISTENING_TARGET}: {LISTENING} address=127.0.0.1:1111\n");
        std::fs::write(&log, &earlier)?;
        let offset = log_length(&log);
        assert_eq!(announced_in(&log, 0), Some("127.0.0.1:1111".parse()?));
        assert_eq!(announced_in(&log, offset), None, "a line from an earlier start was read");
        let coloured = format!(
            "\u{1b}[2m2026\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m \u{1b}[2m{LISTENING_TARGET}\u{1b}[0m\u{1b}[2m:\u{1b}[0m {LISTENING} \u{1b}[3maddress\u{1b}[0m\u{1b}[2m=\u{1b}[0m127.0.0.1:2222\n"
        );
        std::fs::write(&log, format!("{earlier}other line address=1.2.3.4:5\n{coloured}"))?;
        assert_eq!(announced_in(&log, offset), Some("127.0.0.1:2222".parse()?));
        Ok(())
    }
}
