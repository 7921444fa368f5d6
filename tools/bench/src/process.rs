//! What /proc says about one process: the CPU seconds it used and its resident memory, so each figure
//! belongs to the process measured (the worker, the broker, or the harness itself) and to nothing else.

use std::sync::OnceLock;

use anyhow::Context;

/// Clock ticks per second of the times in `/proc/<pid>/stat` (`getconf CLK_TCK`; Linux's 100 when that
/// cannot be asked).
fn ticks_per_second() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse::<f64>().ok())
            .filter(|ticks| *ticks > 0.0)
            .unwrap_or(100.0)
    })
}

/// User plus system CPU seconds used so far by every thread of process `pid`.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The command name may hold spaces and parentheses: the fields that follow start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("").split_whitespace().collect();
    // After the name: state is field 0, utime field 11, stime field 12 (proc(5) numbers them 14 and 15).
    let field = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).context("malformed /proc/<pid>/stat");
    Ok((field(11)? + field(12)?) / ticks_per_second())
}

/// Resident memory of a process.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    /// Resident set size now, in MiB.
    pub now_mib: f64,
    /// Highest resident set size so far, in MiB.
    pub peak_mib: f64,
}

/// The resident memory of process `pid`, now and at its peak.
pub fn memory(pid: u32) -> anyhow::Result<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let kib = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Ok(Memory { now_mib: kib("VmRSS:") / 1024.0, peak_mib: kib("VmHWM:") / 1024.0 })
}

/// The load averages over 1, 5 and 15 minutes, as `/proc/loadavg` gives them (`1.74, 1.15, 1.25`): how busy
/// the machine was with other work while the bench ran.
pub fn load_average() -> String {
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let averages: Vec<&str> = loadavg.split_whitespace().take(3).collect();
    if averages.len() == 3 { averages.join(", ") } else { "unknown".to_owned() }
}

/// One line describing this machine: CPU model, cores and memory.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, m)| m.trim().to_owned()))
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    format!("{model}, {cores} cores, {mem_gib:.0} GiB")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_uses_cpu_and_memory() {
        let pid = std::process::id();
        let before = cpu_seconds(pid).unwrap();
        // Burn a little CPU so the counter has something to show.
        let mut x = 0u64;
        let started = std::time::Instant::now();
        while started.elapsed() < std::time::Duration::from_millis(100) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let after = cpu_seconds(pid).unwrap();
        assert!(after - before >= 0.05, "100 ms of spinning showed {:.3} CPU s", after - before);
        let memory = memory(pid).unwrap();
        assert!(memory.now_mib > 1.0 && memory.peak_mib >= memory.now_mib, "{memory:?}");
    }

    #[test]
    fn the_load_average_is_three_numbers() {
        let load = load_average();
        let numbers: Vec<f64> = load.split(", ").filter_map(|n| n.parse().ok()).collect();
        assert_eq!(numbers.len(), 3, "{load}");
    }
}
