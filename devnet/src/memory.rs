//! Resident memory of the processes a devnet started, with everything they forked (PostgreSQL's
//! backends, for one), read from `/proc` (Linux). For the benchmarks' memory figures.

use std::collections::{BTreeMap, BTreeSet};

/// Resident memory of a set of process trees.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resident {
    /// Processes counted (the roots and their descendants still running).
    pub processes: usize,
    /// Their resident set sizes summed (`VmRSS`), in bytes.
    pub bytes: u64,
}

/// The resident memory of `roots` and all their descendants.
pub fn of_trees(roots: &[u32]) -> Resident {
    let parents = running_parents();
    descendants(&parents, roots).into_iter().fold(Resident::default(), |total, pid| match resident_bytes(pid) {
        Some(bytes) => Resident { processes: total.processes + 1, bytes: total.bytes + bytes },
        None => total,
    })
}

/// `roots` and every process below them in the `child → parent` map (roots that are not running
/// are left out).
fn descendants(parents: &BTreeMap<u32, u32>, roots: &[u32]) -> BTreeSet<u32> {
    let mut found: BTreeSet<u32> = roots.iter().copied().filter(|pid| parents.contains_key(pid)).collect();
    loop {
        let before = found.len();
        let children: Vec<u32> =
            parents.iter().filter(|(_, parent)| found.contains(parent)).map(|(child, _)| *child).collect();
        found.extend(children);
        if found.len() == before {
            return found;
        }
    }
}

/// Every running process's parent, from `/proc/<pid>/stat`.
fn running_parents() -> BTreeMap<u32, u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return BTreeMap::new() };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            Some((pid, parent_in_stat(&stat)?))
        })
        .collect()
}

/// The parent PID in a `/proc/<pid>/stat` line: the second field after the command name, which
/// is parenthesised and may itself hold spaces and parentheses.
fn parent_in_stat(stat: &str) -> Option<u32> {
    let (_, after_name) = stat.rsplit_once(')')?;
    after_name.split_whitespace().nth(1)?.parse().ok()
}

fn resident_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parent_is_read_past_a_command_name_with_spaces_and_parentheses() {
        assert_eq!(parent_in_stat("4242 (postgres: a (b) c) S 17 4242 4242 0 -1"), Some(17));
        assert_eq!(parent_in_stat("garbage"), None);
    }

    #[test]
    fn descendants_follow_every_generation_and_skip_other_trees() {
        let parents = BTreeMap::from([(1, 0), (10, 1), (11, 10), (12, 11), (20, 1), (30, 10)]);
        assert_eq!(descendants(&parents, &[10]), BTreeSet::from([10, 11, 12, 30]));
        assert_eq!(descendants(&parents, &[99]), BTreeSet::new());
    }

    #[test]
    fn this_process_has_resident_memory() {
        let resident = of_trees(&[std::process::id()]);
        assert!(resident.processes >= 1 && resident.bytes > 0, "{resident:?}");
    }
}
