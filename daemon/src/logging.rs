//! Logging setup: `tracing` events formatted as text, filtered by `RUST_LOG` (`info` when unset),
//! so `RUST_LOG=ferry_relayer::bitcoin=debug` works.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Where log lines go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogOutput {
    /// Standard output, with the formatter's default colouring.
    Stdout,
    /// Standard error, coloured only when it is a terminal (leaving stdout to command output).
    Stderr,
}

/// Installs the global subscriber. Call it once, first thing in `main`.
pub fn init(output: LogOutput) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match output {
        LogOutput::Stdout => builder.init(),
        LogOutput::Stderr => {
            builder.with_writer(std::io::stderr).with_ansi(std::io::stderr().is_terminal()).init();
        }
    }
}
