//! The command line of `rs_flood` (hand-parsed: no argument-parser crate).

use core::net::Ipv4Addr;
use std::time::Duration;

/// Usage text, printed after an argument error.
pub const USAGE: &str = "\
usage: rs_flood --bind <IPv4> [options]
  --bind <IPv4>        local address of the flood sockets (required)
  --server <IPv4>      Teredo server to flood on port 3544 (198.51.100.1)
  --first-port <port>  first source port (20000)
  --sockets <n>        sockets on consecutive ports, used round-robin (512)
  --sample <n>         the first n sockets receive and check their RAs (16)
  --burst <n>          RSs per socket per sendmmsg, 1..=32 (8)
  --rate <n>           RS per second offered, 0 = as fast as possible (0)
  --warmup <s>         seconds flooded before measuring (1)
  --duration <s>       seconds measured (5)
  --server-pid <pid>   server process (with its children) to measure
  --clk-tck <n>        clock ticks per second of /proc/<pid>/stat (100)
  --sink <netns>:<dev> also count the RAs that a tc filter dropped at the
                       egress of <dev> in namespace <netns> (sink mode)
  --label <name>       name printed on the result line (server)";

/// Parsed options; see [`USAGE`].
#[derive(Debug, Clone)]
pub struct Args {
    /// Local address of the flood sockets.
    pub bind: Ipv4Addr,
    /// The server's primary address.
    pub server: Ipv4Addr,
    /// First source port.
    pub first_port: u16,
    /// Number of sockets.
    pub sockets: usize,
    /// Number of sample sockets (the first ones).
    pub sample: usize,
    /// RSs per socket per system call.
    pub burst: usize,
    /// Offered RS per second; 0 for no pacing.
    pub rate: u64,
    /// Warm-up time.
    pub warmup: Duration,
    /// Measured time.
    pub duration: Duration,
    /// Server process to measure.
    pub server_pid: Option<u32>,
    /// `sysconf(_SC_CLK_TCK)`, passed in (from `getconf CLK_TCK`).
    pub clk_tck: u64,
    /// Name for the result line.
    pub label: String,
    /// Sink mode: the network namespace and device whose clsact egress
    /// filter drops the RAs to non-sample ports (they are counted there).
    pub sink: Option<(String, String)>,
}

/// Parse the arguments (without the program name).
pub fn parse(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut a = Args {
        bind: Ipv4Addr::UNSPECIFIED,
        server: Ipv4Addr::new(198, 51, 100, 1),
        first_port: 20000,
        sockets: 512,
        sample: 16,
        burst: 8,
        rate: 0,
        warmup: Duration::from_secs(1),
        duration: Duration::from_secs(5),
        server_pid: None,
        clk_tck: 100,
        label: "server".to_owned(),
        sink: None,
    };
    while let Some(opt) = it.next() {
        let value = it.next().ok_or_else(|| format!("{opt} needs a value"))?;
        let bad = |what: &str| format!("{opt}: '{value}' is not {what}");
        match opt.as_str() {
            "--bind" => a.bind = value.parse().map_err(|_| bad("an IPv4 address"))?,
            "--server" => a.server = value.parse().map_err(|_| bad("an IPv4 address"))?,
            "--first-port" => a.first_port = value.parse().map_err(|_| bad("a port"))?,
            "--sockets" => a.sockets = value.parse().map_err(|_| bad("a count"))?,
            "--sample" => a.sample = value.parse().map_err(|_| bad("a count"))?,
            "--burst" => a.burst = value.parse().map_err(|_| bad("a count"))?,
            "--rate" => a.rate = value.parse().map_err(|_| bad("a rate"))?,
            "--warmup" => a.warmup = seconds(&value).ok_or_else(|| bad("seconds"))?,
            "--duration" => a.duration = seconds(&value).ok_or_else(|| bad("seconds"))?,
            "--server-pid" => a.server_pid = Some(value.parse().map_err(|_| bad("a PID"))?),
            "--clk-tck" => a.clk_tck = value.parse().map_err(|_| bad("a tick rate"))?,
            "--label" => a.label = value,
            "--sink" => {
                let (ns, dev) = value
                    .split_once(':')
                    .filter(|(ns, dev)| !ns.is_empty() && !dev.is_empty())
                    .ok_or_else(|| bad("<netns>:<dev>"))?;
                a.sink = Some((ns.to_owned(), dev.to_owned()));
            }
            _ => return Err(format!("unknown option {opt}")),
        }
    }
    if a.bind.is_unspecified() {
        return Err("--bind is required".to_owned());
    }
    if a.sockets == 0 || a.first_port == 0 {
        return Err("--sockets and --first-port must be positive".to_owned());
    }
    if !(1..=crate::BURST_MAX).contains(&a.burst) {
        return Err(format!("--burst must be 1..={}", crate::BURST_MAX));
    }
    if a.duration.is_zero() || a.clk_tck == 0 {
        return Err("--duration and --clk-tck must be positive".to_owned());
    }
    if a.label.contains(char::is_whitespace) {
        return Err("--label must be one word".to_owned());
    }
    Ok(a)
}

/// Non-negative decimal seconds ("5", "0.5"), at most a day.
fn seconds(s: &str) -> Option<Duration> {
    let v: f64 = s.parse().ok()?;
    (v.is_finite() && (0.0..=86_400.0).contains(&v)).then(|| Duration::from_secs_f64(v))
}

#[cfg(test)]
mod test {
    use super::*;

    fn parse_str(s: &str) -> Result<Args, String> {
        parse(s.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn defaults_and_overrides() {
        let a = parse_str("--bind 198.51.100.50").unwrap();
        assert_eq!((a.sockets, a.sample, a.burst, a.rate), (512, 16, 8, 0));
        assert_eq!(a.duration, Duration::from_secs(5));
        let a = parse_str(
            "--bind 198.51.100.50 --server 198.51.100.9 --sockets 64 --burst 4 \
             --rate 1000 --warmup 0.5 --duration 2 --server-pid 77 --label miredo",
        )
        .unwrap();
        assert_eq!(a.server, Ipv4Addr::new(198, 51, 100, 9));
        assert_eq!((a.sockets, a.burst, a.rate), (64, 4, 1000));
        assert_eq!(a.warmup, Duration::from_millis(500));
        assert_eq!((a.server_pid, a.label.as_str()), (Some(77), "miredo"));
        assert_eq!(a.sink, None);
        let a = parse_str("--bind 198.51.100.50 --sink swl1-server:eth0").unwrap();
        assert_eq!(a.sink, Some(("swl1-server".to_owned(), "eth0".to_owned())));
    }

    #[test]
    fn bad_arguments() {
        assert!(parse_str("").unwrap_err().contains("--bind is required"));
        assert!(parse_str("--bind x").unwrap_err().contains("not an IPv4"));
        assert!(parse_str("--bind 198.51.100.50 --burst 33")
            .unwrap_err()
            .contains("1..=32"));
        assert!(parse_str("--bind 198.51.100.50 --duration -1").is_err());
        assert!(parse_str("--bind 198.51.100.50 --rate").is_err());
        assert!(parse_str("--bind 198.51.100.50 --frob 1").is_err());
        assert!(parse_str("--bind 198.51.100.50 --sink eth0").is_err());
        assert!(parse_str("--bind 198.51.100.50 --sink ns:").is_err());
    }
}
