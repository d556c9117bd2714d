//! Profiling only what a benchmark measures. Seeding a million accounts or signing a network's
//! load takes far longer than the blocks being timed, so a whole-run profile shows mostly
//! set-up. With `FERRY_BENCH_PERF_CTL` naming the control FIFO of a `perf record` started with
//! events disabled, and `FERRY_BENCH_PERF_WINDOW` naming one window, the benchmark enables
//! sampling for that window alone:
//!
//! ```text
//! mkfifo /tmp/perf.ctl
//! FERRY_BENCH_PERF_CTL=/tmp/perf.ctl FERRY_BENCH_PERF_WINDOW=growth-large \
//!   perf record -D -1 --control fifo:/tmp/perf.ctl -g target/release/ferry-bench --growth-only
//! ```
//!
//! Windows: `growth-small`, `growth-large` (the timed blocks of the growth benchmark) and
//! `network-ferry`, `network-kvstore`, `network-kvstore-socket` (the load of each network
//! benchmark; sample the validators too with `perf record -a`). Without the variables a window
//! does nothing.

use std::io::Write;

/// An open profiling window; sampling stops when it is dropped.
pub struct Window {
    fifo: Option<std::fs::File>,
}

/// Opens the window `name` when it is the one asked for.
pub fn window(name: &str) -> Window {
    let wanted = std::env::var("FERRY_BENCH_PERF_WINDOW").is_ok_and(|wanted| wanted == name);
    let fifo = std::env::var_os("FERRY_BENCH_PERF_CTL")
        .filter(|_| wanted)
        .and_then(|path| std::fs::OpenOptions::new().write(true).open(path).ok());
    let mut window = Window { fifo };
    window.send("enable");
    window
}

impl Window {
    fn send(&mut self, command: &str) {
        if let Some(fifo) = self.fifo.as_mut()
            && let Err(error) = writeln!(fifo, "{command}").and_then(|()| fifo.flush())
        {
            eprintln!("profiling window: could not write {command:?} to perf's control FIFO: {error}");
        }
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        self.send("disable");
    }
}
