//! Facts about the machine a run starts on: its cores and the memory it may use.

/// The memory limit of a run whose config sets none: half of the memory this process may
/// use, that is of the container's cgroup limit where there is one (a Kubernetes pod's),
/// else of this machine's memory (read from `/proc/meminfo`), or 4 GiB where neither can be
/// read.
pub fn default_memory_limit() -> u64 {
    let machine = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("MemTotal:"))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
        })
        .map(|kib| kib * 1024);
    let container = cgroup_memory_limit();
    let usable = match (machine, container) {
        (Some(machine), Some(container)) => Some(machine.min(container)),
        (machine, container) => machine.or(container),
    };
    usable.map_or(4 << 30, |bytes| bytes / 2)
}

/// The memory limit of this process's cgroup (v2 `memory.max`, or v1
/// `memory.limit_in_bytes`), when one is set: the smallest of those of its own cgroup, as
/// `/proc/self/cgroup` names it, and of the cgroup mounted at `/sys/fs/cgroup` (inside a
/// container with a cgroup namespace that is its own; without one, its path is the host's).
fn cgroup_memory_limit() -> Option<u64> {
    let mut files = vec![
        "/sys/fs/cgroup/memory.max".to_string(),
        "/sys/fs/cgroup/memory/memory.limit_in_bytes".to_string(),
    ];
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    for line in own.lines() {
        // `0::/path` (v2) or `N:memory:/path` (v1).
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if controllers.is_empty() {
            files.push(format!("/sys/fs/cgroup{path}/memory.max"));
        } else if controllers.split(',').any(|c| c == "memory") {
            files.push(format!("/sys/fs/cgroup/memory{path}/memory.limit_in_bytes"));
        }
    }
    files
        .iter()
        .filter_map(|file| {
            std::fs::read_to_string(file)
                .ok()?
                .trim()
                .parse::<u64>()
                .ok()
        })
        // "max" (v2) does not parse; v1 says "no limit" with a number near 2^63.
        .filter(|&bytes| bytes < 1 << 60)
        .min()
}

/// This machine's cores: how many files, tables or decodings exdep runs at once, and its
/// processes' allocator arenas.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}
