//! What many connections need from this machine: source addresses, open files; and what a server
//! process holds: its memory and its open files.

use std::net::{IpAddr, Ipv4Addr};

use anyhow::{Context, bail};

/// How connections are opened: how many at once, and from which loopback addresses.
#[derive(clap::Args, Debug, Clone)]
pub struct Spread {
    /// Connections opened at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Source addresses 127.0.0.1..=127.0.0.N are used in turn (each has ~28k ephemeral ports).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=254))]
    pub source_ips: u8,
    /// Gateways of a cluster to spread the connections over (comma-separated): connection n goes
    /// to gateway n mod count. Without it, every connection goes to --ws.
    #[arg(long, value_delimiter = ',')]
    pub gateways: Vec<std::net::SocketAddr>,
}

impl Default for Spread {
    fn default() -> Self {
        crate::defaults()
    }
}

impl Spread {
    /// The gateway of the `n`th connection: one of --gateways in turn, else `ws`.
    pub fn gateway(&self, n: usize, ws: std::net::SocketAddr) -> std::net::SocketAddr {
        if self.gateways.is_empty() {
            ws
        } else {
            self.gateways[n % self.gateways.len()]
        }
    }

    /// The source address of the `n`th connection; `None` lets the kernel choose (one address).
    pub fn source(&self, n: usize) -> Option<IpAddr> {
        (self.source_ips > 1).then(|| {
            IpAddr::V4(Ipv4Addr::new(
                127,
                0,
                0,
                1 + (n % self.source_ips as usize) as u8,
            ))
        })
    }
}

/// File descriptors a run needs besides its WebSocket connections: the runtime, HTTP clients to
/// the API, stdio.
pub const SPARE_FILES: u64 = 100;

/// The soft limit on open files of this process.
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Fails up front, rather than halfway through a ramp with EMFILE, when `connections` sockets do
/// not fit this process's open-file limit. `hint` says how to split the run.
pub fn check_open_files(connections: usize, hint: &str) -> anyhow::Result<()> {
    if let Some(limit) = open_files_limit()
        && connections as u64 + SPARE_FILES > limit
    {
        bail!(
            "{connections} connections (plus ~{SPARE_FILES} other files) do not fit this \
             process's open-file limit of {limit}: {hint}"
        );
    }
    Ok(())
}

/// Resident set size of a process in bytes, from /proc.
pub fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .context("no VmRSS line")?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kib * 1024)
}

/// Open file descriptors of a process (sockets included), from the entries of /proc/PID/fd.
pub fn open_fds(pid: u32) -> anyhow::Result<u64> {
    let entries = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .with_context(|| format!("cannot list /proc/{pid}/fd"))?;
    Ok(entries.count() as u64)
}

/// CPU time (user + system) a process has used so far, in seconds, from /proc.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("cannot read /proc/{pid}/stat"))?;
    cpu_ticks_of_stat(&stat)
        .map(|ticks| ticks as f64 / clock_ticks_per_second())
        .context("malformed /proc stat line")
}

/// utime + stime (fields 14 and 15) of a `/proc/PID/stat` line. The command name (field 2) is
/// in parentheses and may hold spaces, so fields are counted after its closing parenthesis.
fn cpu_ticks_of_stat(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // fields[0] is field 3 (state): utime is field 14, stime field 15.
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// USER_HZ, the unit of /proc's CPU times: 100 on every Linux architecture (it is part of the
/// kernel's user-space ABI, whatever the kernel's own tick rate).
fn clock_ticks_per_second() -> f64 {
    100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_utime_plus_stime_even_with_spaces_in_the_name() {
        let stat = "4242 (chorus serve) S 1 4242 4242 0 -1 4194560 100 0 0 0 700 45 0 0 20 0 8 0";
        assert_eq!(cpu_ticks_of_stat(stat), Some(745));
        assert_eq!(cpu_ticks_of_stat("garbage"), None);
    }
}
