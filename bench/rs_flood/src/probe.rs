//! What is measured around the flood, read from outside the server: the RA
//! counters (the generator's firewall, and in sink mode the server's egress
//! filter), and the server's CPU time, memory and UDP receive-buffer drops
//! from `/proc`.
//!
//! RAs are counted rather than received. In the generator's namespace an
//! iptables rule matching UDP source port 3544 counts every RA that arrives
//! before it would reach a socket, and a DROP after it spares the generator
//! one wake-up and one copy per RA, so its core keeps sending (the machine
//! has two cores for generator and server). In sink mode most RAs never
//! arrive: a tc filter drops them as they leave the server's interface and
//! the clsact qdisc counts them ([`sink_dropped`]). The few sample sockets
//! whose RAs are let through are checked one by one
//! ([`crate::packet::check_ra`]).

use std::fs;
use std::io;
use std::process::Command;

/// Sum of the packet counters of the generator namespace's INPUT rules that
/// match UDP source port 3544 (the ACCEPT for the sample ports and the DROP
/// for the rest, as `server_rs_flood.sh` installs them).
pub fn ras_counted() -> io::Result<u64> {
    let out = Command::new("iptables")
        .args(["-w", "-n", "-v", "-x", "-L", "INPUT"])
        .output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "iptables -L INPUT failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut total = 0u64;
    let mut rules = 0;
    for line in text.lines().filter(|l| l.contains("spt:3544")) {
        // "pkts bytes target prot opt in out source destination [match]"
        let pkts = line
            .split_whitespace()
            .next()
            .and_then(|p| p.parse::<u64>().ok());
        total += pkts.ok_or_else(|| io::Error::other(format!("cannot parse rule: {line}")))?;
        rules += 1;
    }
    if rules == 0 {
        return Err(io::Error::other(
            "no INPUT rule matches UDP source port 3544 in this namespace",
        ));
    }
    Ok(total)
}

/// RAs dropped so far by the sink: the `dropped` counter of the clsact qdisc
/// on `dev` in network namespace `netns`, whose only filter is the egress
/// drop that `server_rs_flood.sh` installs.
pub fn sink_dropped(netns: &str, dev: &str) -> io::Result<u64> {
    let out = Command::new("tc")
        .args(["-n", netns, "-s", "qdisc", "show", "dev", dev])
        .output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "tc -n {netns} -s qdisc show dev {dev} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    clsact_dropped(&String::from_utf8_lossy(&out.stdout))
        .ok_or_else(|| io::Error::other(format!("no clsact qdisc on {dev} in {netns}")))
}

/// The `dropped` count of the clsact qdisc in `tc -s qdisc show` output:
/// the "Sent … (dropped N, …)" line after its "qdisc clsact" line.
fn clsact_dropped(text: &str) -> Option<u64> {
    let mut lines = text.lines();
    lines.find(|l| l.starts_with("qdisc clsact"))?;
    let stats = lines.next()?;
    let (_, rest) = stats.split_once("dropped ")?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// A process and its descendants (Miredo's server forks a worker).
#[derive(Debug, Clone)]
pub struct ProcTree {
    pids: Vec<u32>,
}

impl ProcTree {
    /// `root` and every process below it now.
    pub fn of(root: u32) -> io::Result<ProcTree> {
        let mut pids = vec![root];
        let mut at = 0;
        while let Some(&pid) = pids.get(at) {
            at += 1;
            let tasks = match fs::read_dir(format!("/proc/{pid}/task")) {
                Ok(t) => t,
                Err(e) if pid == root => return Err(e),
                Err(_) => continue, // a child that just exited
            };
            for task in tasks.flatten() {
                let children = fs::read_to_string(task.path().join("children")).unwrap_or_default();
                pids.extend(
                    children
                        .split_whitespace()
                        .filter_map(|c| c.parse::<u32>().ok()),
                );
            }
        }
        Ok(ProcTree { pids })
    }

    /// The processes, root first.
    pub fn pids(&self) -> &[u32] {
        &self.pids
    }

    /// User and system CPU time of all the processes (all their threads),
    /// in clock ticks.
    pub fn cpu_ticks(&self) -> io::Result<CpuTicks> {
        let mut total = CpuTicks::default();
        for pid in &self.pids {
            let t = cpu_ticks(&pid.to_string())?;
            total.user += t.user;
            total.system += t.system;
        }
        Ok(total)
    }

    /// Summed `VmRSS` and `VmHWM` (peak RSS), in KiB.
    pub fn rss_kib(&self) -> io::Result<(u64, u64)> {
        let mut rss = 0;
        let mut hwm = 0;
        for pid in &self.pids {
            let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
            rss += status_kib(&status, "VmRSS:");
            hwm += status_kib(&status, "VmHWM:");
        }
        Ok((rss, hwm))
    }

    /// The `Udp: RcvbufErrors` counter of the root process's network
    /// namespace: datagrams the kernel dropped because a socket's receive
    /// buffer was full (RSs the server never saw).
    pub fn udp_rcvbuf_errors(&self) -> io::Result<u64> {
        let root = self.pids.first().copied().unwrap_or(0);
        let snmp = fs::read_to_string(format!("/proc/{root}/net/snmp"))?;
        let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
        let (names, values) = (udp.next(), udp.next());
        names
            .zip(values)
            .and_then(|(n, v)| {
                n.split_whitespace()
                    .zip(v.split_whitespace())
                    .find(|(name, _)| *name == "RcvbufErrors")
                    .and_then(|(_, value)| value.parse().ok())
            })
            .ok_or_else(|| io::Error::other("no Udp RcvbufErrors in /proc/<pid>/net/snmp"))
    }
}

/// CPU time split as the kernel accounts it, in clock ticks.
#[derive(Debug, Default, Clone, Copy)]
pub struct CpuTicks {
    /// In user space (the server's own code).
    pub user: u64,
    /// In the kernel on the process's behalf (system calls, and the network
    /// stack work done in their context).
    pub system: u64,
}

impl CpuTicks {
    /// Ticks from `earlier` to `self`, per field.
    pub fn since(self, earlier: CpuTicks) -> CpuTicks {
        CpuTicks {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }
}

/// This process's own CPU time.
pub fn own_cpu_ticks() -> io::Result<CpuTicks> {
    cpu_ticks("self")
}

/// Fields 14 (utime) and 15 (stime) of `/proc/<pid>/stat`.
fn cpu_ticks(pid: &str) -> io::Result<CpuTicks> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may contain spaces and parentheses: count
    // fields from after its last ')'. Field 3 is then index 0.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let mut fields = rest.split_whitespace().skip(11);
    let mut next = || fields.next().and_then(|f| f.parse::<u64>().ok());
    match (next(), next()) {
        (Some(user), Some(system)) => Ok(CpuTicks { user, system }),
        _ => Err(io::Error::other(format!("cannot parse /proc/{pid}/stat"))),
    }
}

/// The KiB value of a `/proc/<pid>/status` line such as `VmRSS:  1234 kB`
/// (0 when absent, as for a zombie).
fn status_kib(status: &str, key: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn own_process_is_readable() {
        let tree = ProcTree::of(std::process::id()).unwrap();
        assert_eq!(tree.pids()[0], std::process::id());
        assert!(tree.cpu_ticks().is_ok());
        let (rss, hwm) = tree.rss_kib().unwrap();
        assert!(rss > 0 && hwm >= rss);
        assert!(tree.udp_rcvbuf_errors().is_ok());
        assert!(own_cpu_ticks().is_ok());
    }

    #[test]
    fn clsact_counter() {
        let text = "qdisc noqueue 0: root refcnt 2 \n \
             Sent 0 bytes 0 pkt (dropped 7, overlimits 0 requeues 0) \n \
             backlog 0b 0p requeues 0\n\
             qdisc clsact ffff: parent ffff:fff1 \n \
             Sent 796 bytes 10 pkt (dropped 3, overlimits 0 requeues 0) \n \
             backlog 0b 0p requeues 0\n";
        assert_eq!(clsact_dropped(text), Some(3));
        assert_eq!(clsact_dropped("qdisc noqueue 0: root refcnt 2\n"), None);
    }

    #[test]
    fn status_lines() {
        let s = "Name:\tx\nVmHWM:\t    2048 kB\nVmRSS:\t    1536 kB\n";
        assert_eq!(status_kib(s, "VmRSS:"), 1536);
        assert_eq!(status_kib(s, "VmHWM:"), 2048);
        assert_eq!(status_kib(s, "VmSwap:"), 0);
    }
}
