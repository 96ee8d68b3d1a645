//! `rs_flood`: flood a Teredo server with Router Solicitations from many UDP
//! source ports and measure how many Router Advertisements come back, per
//! second and per CPU-second the server spends.
//!
//! Run by `bench/server_rs_flood.sh` inside a network namespace of its own,
//! where iptables counts (and drops) the RAs that arrive; in sink mode a tc
//! filter drops and counts most of them as they leave the server instead.
//! See `bench/README.md`. It prints one `key=value` line on stdout for the
//! script to tabulate.
#![forbid(unsafe_code)]

mod args;
mod packet;
mod probe;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use core::net::SocketAddrV4;

use shipworm::sys::udp::{RecvBatch, SendBatch, UdpSocket};
use shipworm_core::addr::TEREDO_PORT;

use args::Args;
use packet::{check_ra, NonceKey, RsTemplate, RS_LEN};
use probe::{CpuTicks, ProcTree};

/// Most RSs sent from one socket per `sendmmsg` (the `--burst` cap).
const BURST_MAX: usize = 32;

/// Kernel buffer per flood socket: the sample sockets must hold a few
/// rounds of RAs between two drains.
const SOCKET_BUFFER: usize = 1 << 18;

/// How long in-flight RAs to the sample sockets are waited for at the end.
const LINGER: Duration = Duration::from_millis(200);

fn main() -> ExitCode {
    let args = match args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("rs_flood: {e}\n{}", args::USAGE);
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rs_flood: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Counters at one instant of the run.
#[derive(Debug, Clone, Copy)]
struct Snapshot {
    at: Instant,
    sent: u64,
    failed: u64,
    /// RAs counted by iptables in the generator's namespace.
    delivered: u64,
    /// RAs counted by the sink filter at the server's egress (0 without one).
    sunk: u64,
    server_ticks: Option<CpuTicks>,
    rcvbuf_errors: Option<u64>,
    own_ticks: CpuTicks,
}

/// What the sample sockets saw.
#[derive(Debug, Default)]
struct Sample {
    sent: u64,
    valid: u64,
    invalid: u64,
    first_invalid: Option<&'static str>,
}

struct Flood<'a> {
    args: &'a Args,
    sockets: Vec<(UdpSocket, SocketAddrV4)>,
    server: Option<ProcTree>,
    key: NonceKey,
    template: RsTemplate,
    /// Next sequence number per socket.
    seq: Vec<u32>,
    sent: u64,
    failed: u64,
    last_error: Option<std::io::Error>,
    sample: Sample,
    rx: RecvBatch<32>,
}

fn run(args: &Args) -> Result<(), String> {
    let mut sockets = Vec::with_capacity(args.sockets);
    for i in 0..args.sockets {
        let port = u16::try_from(usize::from(args.first_port) + i)
            .map_err(|_| "--first-port + --sockets passes 65535".to_owned())?;
        let addr = SocketAddrV4::new(args.bind, port);
        let sock = UdpSocket::bind(addr, SOCKET_BUFFER).map_err(|e| format!("bind {addr}: {e}"))?;
        sockets.push((sock, addr));
    }
    let server = args
        .server_pid
        .map(|pid| ProcTree::of(pid).map_err(|e| format!("server PID {pid}: {e}")))
        .transpose()?;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut flood = Flood {
        args,
        sockets,
        server,
        key: NonceKey::new(seed ^ u64::from(std::process::id())),
        template: RsTemplate::new(),
        seq: vec![0; args.sockets],
        sent: 0,
        failed: 0,
        last_error: None,
        sample: Sample::default(),
        rx: RecvBatch::new(2048),
    };
    let start = Instant::now();
    flood.send_until(start, start + args.warmup)?;
    let a = flood.snapshot()?;
    flood.send_until(start, a.at + args.duration)?;
    let b = flood.snapshot()?;
    let linger_end = Instant::now() + LINGER;
    while Instant::now() < linger_end {
        flood.drain_samples();
        std::thread::sleep(Duration::from_millis(10));
    }
    flood.report(&a, &b);
    Ok(())
}

impl Flood<'_> {
    /// Send bursts round-robin over the sockets until `end`, paced to
    /// `--rate` (counted from `start`) unless it is 0.
    fn send_until(&mut self, start: Instant, end: Instant) -> Result<(), String> {
        let burst = self.args.burst;
        let mut bufs = vec![[0u8; RS_LEN]; burst];
        loop {
            for i in 0..self.sockets.len() {
                let now = Instant::now();
                if now >= end {
                    return Ok(());
                }
                if self.args.rate > 0 {
                    let due =
                        start + Duration::from_secs_f64(self.sent as f64 / self.args.rate as f64);
                    if due > now + Duration::from_millis(1) {
                        std::thread::sleep(due - now);
                    }
                }
                let socket = i as u32;
                let Some(seq) = self.seq.get_mut(i) else {
                    continue;
                };
                for buf in bufs.iter_mut() {
                    self.template.emit(self.key.nonce(socket, *seq), buf);
                    *seq = seq.wrapping_add(1);
                }
                let Some((sock, _)) = self.sockets.get(i) else {
                    continue;
                };
                let to = SocketAddrV4::new(self.args.server, TEREDO_PORT);
                let mut batch = SendBatch::<'_, '_, BURST_MAX>::new(sock);
                for buf in &bufs {
                    batch.push(to, buf);
                }
                let result = batch.finish();
                self.sent += result.sent as u64;
                self.failed += result.failed as u64;
                if result.last_error.is_some() {
                    self.last_error = result.last_error;
                }
                if i < self.args.sample {
                    self.sample.sent += result.sent as u64;
                    self.drain(i);
                }
            }
        }
    }

    /// Receive and check what a sample socket has queued.
    fn drain(&mut self, i: usize) {
        let Some((sock, local)) = self.sockets.get(i) else {
            return;
        };
        while let Ok(n @ 1..) = self.rx.recv(sock) {
            for dgram in self.rx.iter() {
                match check_ra(dgram.data, self.key, i as u32, *local, self.args.server) {
                    Ok(()) => self.sample.valid += 1,
                    Err(why) => {
                        self.sample.invalid += 1;
                        self.sample.first_invalid.get_or_insert(why);
                    }
                }
            }
            if n < 32 {
                break;
            }
        }
    }

    fn drain_samples(&mut self) {
        for i in 0..self.args.sample.min(self.sockets.len()) {
            self.drain(i);
        }
    }

    fn snapshot(&mut self) -> Result<Snapshot, String> {
        let before = Instant::now();
        let delivered = probe::ras_counted().map_err(|e| format!("counting RAs: {e}"))?;
        let sunk = match &self.args.sink {
            Some((netns, dev)) => {
                probe::sink_dropped(netns, dev).map_err(|e| format!("counting sunk RAs: {e}"))?
            }
            None => 0,
        };
        let after = Instant::now();
        let (server_ticks, rcvbuf_errors) = match &self.server {
            Some(tree) => (
                Some(
                    tree.cpu_ticks()
                        .map_err(|e| format!("server CPU time: {e}"))?,
                ),
                tree.udp_rcvbuf_errors().ok(),
            ),
            None => (None, None),
        };
        Ok(Snapshot {
            // The counters were read somewhere within the iptables and tc
            // calls.
            at: before + (after - before) / 2,
            sent: self.sent,
            failed: self.failed,
            delivered,
            sunk,
            server_ticks,
            rcvbuf_errors,
            own_ticks: probe::own_cpu_ticks().unwrap_or_default(),
        })
    }

    /// Print the `key=value` line (stdout) and a readable summary (stderr).
    fn report(&self, a: &Snapshot, b: &Snapshot) {
        let secs = (b.at - a.at).as_secs_f64();
        let tick = 1.0 / self.args.clk_tck as f64;
        let sent = b.sent - a.sent;
        let delivered = b.delivered.saturating_sub(a.delivered);
        let sunk = b.sunk.saturating_sub(a.sunk);
        let ras = delivered + sunk;
        let server_ticks = a.server_ticks.zip(b.server_ticks).map(|(x, y)| y.since(x));
        let server_cpu = server_ticks.map(|t| (t.user + t.system) as f64 * tick);
        let own = b.own_ticks.since(a.own_ticks);
        let rss = self.server.as_ref().and_then(|t| t.rss_kib().ok());
        let rcvbuf = a
            .rcvbuf_errors
            .zip(b.rcvbuf_errors)
            .map(|(x, y)| y.saturating_sub(x));
        let opt = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
        let s = &self.sample;
        println!(
            "label={} secs={secs:.3} offered_rs={sent} offered_per_s={:.0} send_failed={} \
             ras={ras} ras_sunk={sunk} ras_delivered={delivered} ras_per_s={:.0} server_cpu_s={} server_user_s={} server_sys_s={} \
             ras_per_cpu_s={} gen_user_s={:.2} gen_sys_s={:.2} \
             server_procs={} server_rss_kib={} server_hwm_kib={} server_rcvbuf_drops={} \
             sample_sent={} sample_valid={} sample_invalid={} first_invalid={}",
            self.args.label,
            sent as f64 / secs,
            b.failed - a.failed,
            ras as f64 / secs,
            opt(server_cpu.map(|c| format!("{c:.2}"))),
            opt(server_ticks.map(|t| format!("{:.2}", t.user as f64 * tick))),
            opt(server_ticks.map(|t| format!("{:.2}", t.system as f64 * tick))),
            opt(server_cpu
                .filter(|c| *c > 0.0)
                .map(|c| format!("{:.0}", ras as f64 / c))),
            own.user as f64 * tick,
            own.system as f64 * tick,
            opt(self.server.as_ref().map(|t| t.pids().len().to_string())),
            opt(rss.map(|r| r.0.to_string())),
            opt(rss.map(|r| r.1.to_string())),
            opt(rcvbuf.map(|r| r.to_string())),
            s.sent,
            s.valid,
            s.invalid,
            s.first_invalid.unwrap_or("none").replace(' ', "_"),
        );
        eprintln!(
            "rs_flood[{}]: {secs:.2} s, {sent} RS offered ({:.0}/s), {ras} RAs ({:.0}/s); \
             sample: {} of {} RSs answered with a valid RA, {} invalid{}{}",
            self.args.label,
            sent as f64 / secs,
            ras as f64 / secs,
            s.valid,
            s.sent,
            s.invalid,
            s.first_invalid
                .map(|w| format!(" (first: {w})"))
                .unwrap_or_default(),
            self.last_error
                .as_ref()
                .map(|e| format!("; last send error: {e}"))
                .unwrap_or_default(),
        );
    }
}
