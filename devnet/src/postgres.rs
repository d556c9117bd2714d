//! A private PostgreSQL cluster for tests and the devnet: `initdb` into a directory, a server on
//! `127.0.0.1:<free port>` with its unix socket inside the data directory, trust authentication
//! for local connections only (nothing else can reach it), and databases created on demand.
//! Dropping [`Postgres`] stops the postmaster it started (fast shutdown: SIGINT to that PID, then
//! SIGKILL if it lingers) — and nothing else.
//!
//! PostgreSQL refuses to run as root. When the caller is root, `initdb` and `postgres` run as an
//! unprivileged OS account — `$FERRY_POSTGRES_OS_USER`, else `postgres` (created by the Debian
//! package), else `nobody` — by setting the child's uid and gid before exec (no `su`/`runuser`, so
//! the PID we hold is the postmaster itself), and the cluster directory is handed to that account.
//! Other callers run the server as themselves.
//!
//! [`PgServer`] picks the server a test or the devnet uses: `$DATABASE_URL` when it is set,
//! otherwise a private cluster (DESIGN, "Postgres"). Tests and benchmarks take their databases
//! as [`ScratchDatabase`]s — a name no other run uses, dropped when the value is — so runs
//! sharing one server (or a devnet's server) never see each other's cursors, audit rows or
//! double-sign records.
//!
//! The services connect as roles that own nothing (`ferry_relayer`, `ferry_signer`, created by
//! the migrations): [`migrate_for_service`] applies the migrations as the owner (the cluster's
//! superuser, or `$DATABASE_URL`'s user) and hands back the URL a service connects with. A private
//! cluster trusts loopback connections, so the roles need no password; against `$DATABASE_URL`
//! they authenticate as that server says (a password through `~/.pgpass` or `PGPASSWORD`).

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use sqlx::{Connection, PgConnection};

use crate::tools::repo_root;

/// The superuser `initdb` creates (whatever OS account runs the server).
pub const SUPERUSER: &str = "postgres";
/// How long a starting server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a fast shutdown may take before the postmaster is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// Attempts at a free port (another process may take the probed port before the server binds it).
const PORT_ATTEMPTS: usize = 3;
/// Settings passed on the server's command line. A test or devnet cluster is disposable, so it
/// trades crash durability (of the OS, not of a process) for speed.
const SERVER_SETTINGS: [&str; 5] =
    ["fsync=off", "synchronous_commit=off", "full_page_writes=off", "logging_collector=off", "max_connections=200"];

/// Where the PostgreSQL programs are.
#[derive(Clone, Debug)]
struct Binaries {
    initdb: PathBuf,
    postgres: PathBuf,
}

impl Binaries {
    /// `$FERRY_POSTGRES_BIN/`, else `.tools/bin/` (filled by `make setup`), else `PATH`. Paths are
    /// canonicalised: the unprivileged account must reach them without following our symlinks.
    fn locate() -> anyhow::Result<Binaries> {
        let candidates: Vec<PathBuf> = std::env::var_os("FERRY_POSTGRES_BIN")
            .map(PathBuf::from)
            .into_iter()
            .chain([repo_root().join(".tools/bin")])
            .chain(
                std::env::var_os("PATH")
                    .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
                    .unwrap_or_default(),
            )
            .collect();
        let dir =
            candidates.iter().find(|dir| dir.join("initdb").is_file() && dir.join("postgres").is_file()).context(
                "PostgreSQL (initdb, postgres) not found in $FERRY_POSTGRES_BIN, .tools/bin or PATH: run `make setup`",
            )?;
        let canonical = |name: &str| {
            let path = dir.join(name);
            fs::canonicalize(&path).with_context(|| format!("resolving {}", path.display()))
        };
        Ok(Binaries { initdb: canonical("initdb")?, postgres: canonical("postgres")? })
    }
}

/// The unprivileged OS account a root caller runs the server as.
#[derive(Clone, Debug)]
struct Account {
    name: String,
    uid: u32,
    gid: u32,
}

impl Account {
    /// `None` when the caller is not root (the server then runs as the caller).
    fn for_server() -> anyhow::Result<Option<Account>> {
        if effective_uid()? != 0 {
            return Ok(None);
        }
        let names = match std::env::var("FERRY_POSTGRES_OS_USER") {
            Ok(name) => vec![name],
            Err(_) => vec!["postgres".to_owned(), "nobody".to_owned()],
        };
        for name in &names {
            if let (Some(uid), Some(gid)) = (id_of(name, "-u"), id_of(name, "-g"))
                && uid != 0
            {
                return Ok(Some(Account { name: name.clone(), uid, gid }));
            }
        }
        bail!(
            "running as root and PostgreSQL refuses root, but none of the accounts {names:?} exists (or it is root): \
             create an unprivileged account or set FERRY_POSTGRES_OS_USER"
        )
    }

    fn apply(&self, command: &mut Command) {
        // Dropping from root: std clears the supplementary groups too.
        command.uid(self.uid).gid(self.gid);
    }
}

fn effective_uid() -> anyhow::Result<u32> {
    // /proc/self belongs to the process's effective uid.
    if let Ok(metadata) = fs::metadata("/proc/self") {
        return Ok(metadata.uid());
    }
    let output = Command::new("id").arg("-u").output().context("running `id -u`")?;
    String::from_utf8_lossy(&output.stdout).trim().parse().context("parsing `id -u`")
}

fn id_of(name: &str, flag: &str) -> Option<u32> {
    let output = Command::new("id").args([flag, name]).stderr(Stdio::null()).output().ok()?;
    if !output.status.success() {
        return None;
    }
    String::from_utf8_lossy(&output.stdout).trim().parse().ok()
}

/// A private PostgreSQL cluster, stopped on drop.
#[derive(Debug)]
pub struct Postgres {
    dir: PathBuf,
    data_dir: PathBuf,
    port: u16,
    child: Option<Child>,
    /// Owns the directory of a [`Postgres::start_temporary`] cluster; removed after the stop.
    temp: Option<tempfile::TempDir>,
}

impl Postgres {
    /// Starts a cluster in a new temporary directory, removed when it is dropped.
    ///
    /// # Errors
    /// As [`Postgres::start`].
    pub async fn start_temporary() -> anyhow::Result<Postgres> {
        let temp = tempfile::Builder::new().prefix("ferry-pg-").tempdir().context("creating a temporary directory")?;
        let mut postgres = Postgres::start(temp.path()).await?;
        postgres.temp = Some(temp);
        Ok(postgres)
    }

    /// Starts a cluster in `dir` (created if missing): runs `initdb` into `dir/data` unless a
    /// cluster is already there (the devnet restarts on its data), then the server on a free
    /// loopback port, and waits until it accepts connections. Server output goes to
    /// `dir/postgres.log`.
    ///
    /// # Errors
    /// When PostgreSQL is not installed, `initdb` fails, the server account cannot reach `dir`,
    /// or the server does not accept connections within 30 s (the log's tail is quoted).
    pub async fn start(dir: &Path) -> anyhow::Result<Postgres> {
        let binaries = Binaries::locate()?;
        let account = Account::for_server()?;
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let dir = fs::canonicalize(dir).with_context(|| format!("resolving {}", dir.display()))?;
        let data_dir = dir.join("data");
        if let Some(account) = &account {
            std::os::unix::fs::chown(&dir, Some(account.uid), Some(account.gid))
                .with_context(|| format!("handing {} to the `{}` account", dir.display(), account.name))?;
            check_reachable(&dir, account)?;
        }
        if !data_dir.join("PG_VERSION").exists() {
            init_cluster(&binaries, account.as_ref(), &dir, &data_dir)?;
        }
        // The socket path must fit in sockaddr_un (107 bytes).
        let socket_path_len = data_dir.as_os_str().len() + "/.s.PGSQL.65535".len();
        if socket_path_len > 107 {
            bail!("{} is too deep for a unix socket path ({socket_path_len} > 107 bytes)", data_dir.display());
        }
        let log_path = dir.join("postgres.log");
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port()?;
            let log_start = fs::metadata(&log_path).map(|m| m.len()).unwrap_or(0);
            let child = spawn_server(&binaries, account.as_ref(), &dir, &data_dir, port, &log_path)?;
            let mut postgres =
                Postgres { dir: dir.clone(), data_dir: data_dir.clone(), port, child: Some(child), temp: None };
            match postgres.wait_ready(&log_path, log_start).await {
                Ok(()) => return Ok(postgres),
                Err(Startup::PortTaken(log)) => last_error = Some(anyhow::anyhow!("port {port} was taken:\n{log}")),
                Err(Startup::Failed(error)) => return Err(error),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("no free port")))
            .with_context(|| format!("starting PostgreSQL in {}", dir.display()))
    }

    async fn wait_ready(&mut self, log_path: &Path, log_start: u64) -> Result<(), Startup> {
        let started = Instant::now();
        let url = self.url();
        loop {
            let exited = match self.child.as_mut() {
                Some(child) => child.try_wait().map_err(|e| Startup::Failed(e.into()))?,
                None => return Err(Startup::Failed(anyhow::anyhow!("the server was stopped while starting"))),
            };
            if let Some(status) = exited {
                self.child = None;
                let log = log_since(log_path, log_start);
                if log.contains("could not bind") || log.contains("Address already in use") {
                    return Err(Startup::PortTaken(log));
                }
                return Err(Startup::Failed(anyhow::anyhow!(
                    "postgres exited with {status} while starting; log {}:\n{log}",
                    log_path.display()
                )));
            }
            if let Ok(Ok(mut connection)) =
                tokio::time::timeout(Duration::from_secs(2), PgConnection::connect(&url)).await
            {
                // The port was free when probed; make sure it is our server that answers.
                let serving: Result<String, _> =
                    sqlx::query_scalar("SHOW data_directory").fetch_one(&mut connection).await;
                let _ = connection.close().await;
                match serving {
                    Ok(dir) if Path::new(&dir) == self.data_dir => return Ok(()),
                    Ok(dir) => {
                        self.stop();
                        return Err(Startup::PortTaken(format!("127.0.0.1:{} is served from {dir}", self.port)));
                    }
                    Err(_) => {}
                }
            }
            if started.elapsed() > START_TIMEOUT {
                self.stop();
                return Err(Startup::Failed(anyhow::anyhow!(
                    "postgres did not accept connections on 127.0.0.1:{} within {START_TIMEOUT:?}; log {}:\n{}",
                    self.port,
                    log_path.display(),
                    log_since(log_path, log_start)
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The URL of the maintenance database `postgres`, as the superuser.
    pub fn url(&self) -> String {
        self.url_for(SUPERUSER)
    }

    /// The URL of database `name`, as the superuser.
    pub fn url_for(&self, name: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{name}", self.port)
    }

    /// The TCP port (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The postmaster's PID, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The cluster directory (holding `data/` and `postgres.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The data directory (also the unix socket directory).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Creates database `name` unless it exists; returns its URL.
    ///
    /// # Errors
    /// When `name` is not a plain lowercase identifier, or the server refuses.
    pub async fn create_database(&self, name: &str) -> anyhow::Result<String> {
        create_database_at(&self.url(), name).await
    }

    /// Hands the postmaster over (for `make devnet`, which records it in a pid file): it keeps
    /// running after this value is dropped, and a temporary directory is kept for it. Returns
    /// its PID.
    pub fn detach(mut self) -> Option<u32> {
        if let Some(temp) = self.temp.take() {
            let _ = temp.keep();
        }
        self.child.take().map(|child| child.id())
    }

    /// Stops the server: SIGINT (fast shutdown) to the postmaster this value started, SIGKILL
    /// if it has not exited after 15 s. Idempotent.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        // Still unreaped, so its PID cannot have been recycled.
        if let Ok(None) = child.try_wait() {
            let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).stderr(Stdio::null()).status();
            let deadline = Instant::now() + STOP_TIMEOUT;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
        }
        let _ = child.wait();
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
        // `temp` (if any) is removed after this, with the server already gone.
    }
}

enum Startup {
    /// Another process bound the port first; try another.
    PortTaken(String),
    Failed(anyhow::Error),
}

fn check_reachable(dir: &Path, account: &Account) -> anyhow::Result<()> {
    let mut test = Command::new("test");
    test.arg("-w").arg(dir).current_dir("/");
    account.apply(&mut test);
    let reachable = test.status().map(|status| status.success()).unwrap_or(false);
    if !reachable {
        bail!(
            "the `{}` account (PostgreSQL refuses to run as root) cannot reach {}: make its parent directories \
             searchable (chmod o+x) or use a directory under /tmp",
            account.name,
            dir.display()
        );
    }
    Ok(())
}

fn init_cluster(binaries: &Binaries, account: Option<&Account>, dir: &Path, data_dir: &Path) -> anyhow::Result<()> {
    let mut initdb = Command::new(&binaries.initdb);
    initdb
        .arg("--pgdata")
        .arg(data_dir)
        .args([&format!("--username={SUPERUSER}"), "--auth-local=trust", "--auth-host=trust"])
        .args(["--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"])
        .current_dir(dir)
        .stdin(Stdio::null());
    if let Some(account) = account {
        account.apply(&mut initdb);
    }
    let output = initdb.output().with_context(|| format!("running {}", binaries.initdb.display()))?;
    if !output.status.success() {
        bail!(
            "initdb {} failed ({}):\n{}{}",
            data_dir.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

fn spawn_server(
    binaries: &Binaries,
    account: Option<&Account>,
    dir: &Path,
    data_dir: &Path,
    port: u16,
    log_path: &Path,
) -> anyhow::Result<Child> {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    let mut server = Command::new(&binaries.postgres);
    server
        .arg("-D")
        .arg(data_dir)
        .args(["-c", "listen_addresses=127.0.0.1", "-c", &format!("port={port}")])
        .arg("-c")
        .arg(format!("unix_socket_directories={}", data_dir.display()));
    for setting in SERVER_SETTINGS {
        server.args(["-c", setting]);
    }
    server.current_dir(dir).stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
    if let Some(account) = account {
        account.apply(&mut server);
    }
    server.spawn().with_context(|| format!("starting {}", binaries.postgres.display()))
}

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("probing for a free port")?;
    Ok(listener.local_addr()?.port())
}

fn log_since(path: &Path, start: u64) -> String {
    let mut text = String::new();
    if let Ok(mut file) = File::open(path) {
        let _ = file.seek(SeekFrom::Start(start));
        let _ = file.read_to_string(&mut text);
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// Whether `name` can be used as a database name without quoting surprises.
fn check_database_name(name: &str) -> anyhow::Result<()> {
    let mut bytes = name.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_lowercase() || b == b'_');
    let rest_ok = bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !first_ok || !rest_ok || name.len() > 63 {
        bail!("`{name}` is not a database name here: use [a-z_][a-z0-9_]*, at most 63 bytes");
    }
    Ok(())
}

/// `url` with its database replaced by `name` (query parameters kept).
pub fn url_with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[authority_start..].find('/').map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{name}", &base[..authority_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// `url` with its user replaced by `role` and its password removed (host, port, database and
/// parameters kept).
pub fn url_as_role(url: &str, role: &str) -> String {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[authority_start..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let host = rest[..authority_end].rfind('@').map_or(&rest[..authority_end], |at| &rest[at + 1..authority_end]);
    format!("{}{role}@{host}{}", &url[..authority_start], &rest[authority_end..])
}

/// Applies the migrations to the database at `owner_url`, connected as its owner (they create
/// the tables, triggers, the service roles and their grants), and returns the URL service
/// `role` ([`ferry_relayer::store::ROLE`], [`ferry_signer::store::ROLE`]) connects with: the
/// same database as that role, which owns nothing in it.
///
/// # Errors
/// When the server refuses the connection or a migration.
pub async fn migrate_for_service(owner_url: &str, role: &str) -> anyhow::Result<String> {
    let service_url = url_as_role(owner_url, role);
    let mut connection = PgConnection::connect(owner_url)
        .await
        .with_context(|| format!("connecting to the database of {service_url} as its owner"))?;
    ferry_relayer::store::MIGRATOR
        .run(&mut connection)
        .await
        .with_context(|| format!("applying the migrations to the database of {service_url} as its owner"))?;
    let _ = connection.close().await;
    Ok(url_as_role(owner_url, role))
}

async fn create_database_at(server_url: &str, name: &str) -> anyhow::Result<String> {
    check_database_name(name)?;
    let mut connection =
        PgConnection::connect(server_url).await.with_context(|| format!("connecting to {server_url}"))?;
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_optional(&mut connection)
        .await
        .context("looking up databases")?;
    if exists.is_none() {
        // The name was checked above: it cannot close the quotes.
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut connection)
            .await
            .with_context(|| format!("creating database {name}"))?;
    }
    let _ = connection.close().await;
    Ok(url_with_database(server_url, name))
}

async fn drop_database_at(server_url: &str, name: &str) -> anyhow::Result<()> {
    check_database_name(name)?;
    let mut connection =
        PgConnection::connect(server_url).await.with_context(|| format!("connecting to {server_url}"))?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut connection)
        .await
        .with_context(|| format!("dropping database {name}"))?;
    let _ = connection.close().await;
    Ok(())
}

/// The PostgreSQL server a test or the devnet uses: the one `$DATABASE_URL` names, or a private
/// cluster started (and, on drop, stopped) here.
#[derive(Debug)]
pub enum PgServer {
    /// `$DATABASE_URL`'s server; databases are created in it (the URL's user needs CREATEDB).
    External {
        /// The URL as given.
        url: String,
    },
    /// A private cluster.
    Private(Postgres),
}

impl PgServer {
    /// `$DATABASE_URL` if set (and not empty), else a private cluster in `dir` or, without `dir`,
    /// in a temporary directory.
    ///
    /// # Errors
    /// As [`Postgres::start`].
    pub async fn from_env_or_start(dir: Option<&Path>) -> anyhow::Result<PgServer> {
        if let Some(url) = std::env::var("DATABASE_URL").ok().filter(|url| !url.is_empty()) {
            return Ok(PgServer::External { url });
        }
        let postgres = match dir {
            Some(dir) => Postgres::start(dir).await?,
            None => Postgres::start_temporary().await?,
        };
        Ok(PgServer::Private(postgres))
    }

    /// A private cluster's postmaster PID while it runs (None for an external server).
    pub fn pid(&self) -> Option<u32> {
        match self {
            PgServer::External { .. } => None,
            PgServer::Private(postgres) => postgres.pid(),
        }
    }

    /// Leaves a private cluster running and returns its PID (None for an external server).
    pub fn detach(self) -> Option<u32> {
        match self {
            PgServer::External { .. } => None,
            PgServer::Private(postgres) => postgres.detach(),
        }
    }

    /// The server's URL (for a private cluster, its maintenance database).
    pub fn url(&self) -> String {
        match self {
            PgServer::External { url } => url.clone(),
            PgServer::Private(postgres) => postgres.url(),
        }
    }

    /// Creates database `name` unless it exists; returns its URL.
    ///
    /// # Errors
    /// When `name` is not a plain lowercase identifier, or the server refuses.
    pub async fn create_database(&self, name: &str) -> anyhow::Result<String> {
        create_database_at(&self.url(), name).await
    }

    /// Drops database `name` (closing its connections).
    ///
    /// # Errors
    /// When `name` is not a plain lowercase identifier, or the server refuses.
    pub async fn drop_database(&self, name: &str) -> anyhow::Result<()> {
        drop_database_at(&self.url(), name).await
    }

    /// A fresh database for one test or benchmark run: `<prefix>_<run>`, where `<run>` is unique
    /// to this process and call, created empty (a leftover of the same name from a killed run is
    /// dropped first) and dropped again when the returned value is.
    ///
    /// # Errors
    /// When `prefix` is not a plain lowercase identifier of at most 40 bytes, or the server refuses.
    pub async fn scratch_database(&self, prefix: &str) -> anyhow::Result<ScratchDatabase> {
        if prefix.len() > 40 {
            bail!("scratch database prefix `{prefix}` is longer than 40 bytes");
        }
        let name = format!("{prefix}_{}", run_tag());
        let server_url = self.url();
        drop_database_at(&server_url, &name).await?;
        let url = create_database_at(&server_url, &name).await?;
        Ok(ScratchDatabase { server_url, name, url, removed: false })
    }
}

/// `<pid>_<call>_<start time>` in base 36: unique per process and call, and across runs that
/// reuse a PID.
fn run_tag() -> String {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    static STARTED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let started = *STARTED
        .get_or_init(|| SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs() % 1_000_000));
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    format!("{}_{}_{}", base36(u64::from(std::process::id())), base36(call), base36(started))
}

fn base36(mut value: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[usize::try_from(value % 36).unwrap_or_default()]);
        value /= 36;
        if value == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// A database that lives as long as this value: see [`PgServer::scratch_database`]. Dropping it
/// drops the database with its open connections (`WITH (FORCE)`), so drop it after the
/// processes that use it; on a private cluster that has already stopped there is nothing left
/// to drop.
#[derive(Debug)]
pub struct ScratchDatabase {
    server_url: String,
    name: String,
    url: String,
    /// Already dropped by [`ScratchDatabase::remove`].
    removed: bool,
}

impl ScratchDatabase {
    /// The database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Drops the database now, reporting a failure (dropping the value only warns).
    ///
    /// # Errors
    /// When the server refuses or cannot be reached.
    pub async fn remove(mut self) -> anyhow::Result<()> {
        self.removed = true;
        drop_database_at(&self.server_url, &self.name).await
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        if self.removed {
            return;
        }
        let server_url = self.server_url.clone();
        let name = self.name.clone();
        // Drop may run inside a runtime (which must not block on itself): use a thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                tokio::time::timeout(Duration::from_secs(20), drop_database_at(&server_url, &name))
                    .await
                    .map_err(|_| anyhow::anyhow!("timed out"))?
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            // A private cluster stopped before its databases: nothing remains to drop.
            Ok(Err(error)) if is_unreachable(&error) => {}
            Ok(Err(error)) => eprintln!("warning: scratch database {} was not dropped: {error:#}", self.name),
            Err(_) => eprintln!("warning: dropping scratch database {} panicked", self.name),
        }
    }
}

/// Whether `error` says the server could not be reached at all.
fn is_unreachable(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause.downcast_ref::<sqlx::Error>().is_some_and(|e| matches!(e, sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_keep_credentials_host_and_parameters() {
        assert_eq!(
            url_with_database("postgres://u:p@h:5/postgres?sslmode=disable", "x"),
            "postgres://u:p@h:5/x?sslmode=disable"
        );
        assert_eq!(url_with_database("postgres://h:5", "x"), "postgres://h:5/x");
        assert_eq!(url_with_database("postgresql://h/db", "y_1"), "postgresql://h/y_1");
    }

    #[test]
    fn service_urls_name_the_role_and_no_password() {
        assert_eq!(
            url_as_role("postgres://u:p@h:5/db?sslmode=disable", "ferry_signer"),
            "postgres://ferry_signer@h:5/db?sslmode=disable"
        );
        assert_eq!(
            url_as_role("postgres://postgres@127.0.0.1:5432/r_0", "ferry_relayer"),
            "postgres://ferry_relayer@127.0.0.1:5432/r_0"
        );
        assert_eq!(url_as_role("postgresql://h/db", "x"), "postgresql://x@h/db");
    }

    #[test]
    fn run_tags_make_distinct_valid_names_within_the_length_limit() {
        let prefix = "p".repeat(40);
        let (first, second) = (format!("{prefix}_{}", run_tag()), format!("{prefix}_{}", run_tag()));
        assert_ne!(first, second);
        for name in [&first, &second] {
            assert!(check_database_name(name).is_ok(), "{name}");
        }
        assert_eq!(base36(0), "0");
        assert_eq!(base36(36 * 36 + 35), "10z");
    }

    #[test]
    fn database_names_are_plain_identifiers() {
        assert!(check_database_name("relayer_0").is_ok());
        for bad in ["", "0abc", "Upper", "a-b", "a\"b", &"a".repeat(64)] {
            assert!(check_database_name(bad).is_err(), "{bad} accepted");
        }
    }
}
