//! The client hook (`--hook PATH`): a program run on every state change
//! with the environment Miredo's privileged helper gives its
//! `client-hook`, so existing hook scripts (and OpenWrt's netifd protocol
//! handler) work unchanged.
//!
//! Variables: `IFACE`, `IFINDEX`, `STATE` (`up`, `down`, `destroy`),
//! `ADDRESS` (the Teredo address, `::` when not up), `LLADDRESS`
//! (fe80::8000:5445:5245:444f when the address has the cone flag,
//! fe80::ffff:ffff:ffff otherwise), `MTU`, and `OLD_STATE`, `OLD_ADDRESS`,
//! `OLD_LLADDRESS`, `OLD_MTU` describing the previous call (before the
//! first call: down, `::`, 1280). The rest of the environment is inherited.
//!
//! The program is started directly (no shell) through [`crate::sys::spawn`],
//! as `std::process::Command` would start it: a name without `/` is looked
//! up in `PATH`, standard input is /dev/null, standard output and error are
//! the client's. Runs are strictly sequential, in state-change order,
//! because a hook that adds the new address must not overtake the one that
//! removes the old. The event loop never waits for a hook: [`Hooks::poll`]
//! reaps the running one without blocking and starts the next; one that
//! runs longer than [`HOOK_TIMEOUT`] is killed. Each exit status is logged.

use core::fmt::Display;
use core::net::Ipv6Addr;
use std::path::PathBuf;

use log::{debug, error, info, warn};
use shipworm_core::addr::{CLIENT_LL_CONE, CLIENT_LL_RESTRICTED};
use shipworm_core::client::DEFAULT_MTU;
use shipworm_core::time::{Duration, Instant};

use crate::sys::clock;
use crate::sys::spawn::{spawn, Child};

/// Longest a hook may run before it is killed.
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(30);

/// How often the loop checks a running hook (it has no child-exit signal).
pub const HOOK_POLL: Duration = Duration::from_millis(20);

/// The `STATE` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookState {
    /// Qualified: the address is usable.
    Up,
    /// Not qualified (or shutting down).
    Down,
    /// The tunnel is about to be deleted (last call).
    Destroy,
}

impl HookState {
    fn as_str(self) -> &'static str {
        match self {
            HookState::Up => "up",
            HookState::Down => "down",
            HookState::Destroy => "destroy",
        }
    }
}

/// What one hook call describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// Interface state.
    pub state: HookState,
    /// The Teredo address (`::` when not up).
    pub address: Ipv6Addr,
    /// The address has the cone flag (selects `LLADDRESS`).
    pub cone: bool,
    /// Link MTU.
    pub mtu: u16,
}

impl Snapshot {
    /// The state before the first call, as Miredo reports it.
    pub const INITIAL: Snapshot = Snapshot {
        state: HookState::Down,
        address: Ipv6Addr::UNSPECIFIED,
        cone: false,
        mtu: DEFAULT_MTU,
    };

    /// A down state that keeps the MTU (Miredo keeps reporting it).
    pub fn down(self) -> Snapshot {
        Snapshot {
            state: HookState::Down,
            address: Ipv6Addr::UNSPECIFIED,
            cone: false,
            ..self
        }
    }

    /// The link-local address a client with this address uses
    /// (RFC 4380 §5.2.1: the cone form only with the cone flag).
    pub fn lladdress(&self) -> Ipv6Addr {
        if self.cone {
            CLIENT_LL_CONE
        } else {
            CLIENT_LL_RESTRICTED
        }
    }
}

/// The variables (`NAME=value`) for a call that goes from `old` to `new`.
pub fn environment(iface: &str, index: u32, old: &Snapshot, new: &Snapshot) -> Vec<String> {
    let mut vars = vec![format!("IFACE={iface}"), format!("IFINDEX={index}")];
    // The same four for the new state and, prefixed, the old one: one
    // table and one formatting call rather than eight conversions.
    for (prefix, snapshot) in [("", new), ("OLD_", old)] {
        let lladdress = snapshot.lladdress();
        let fields: [(&str, &dyn Display); 4] = [
            ("STATE", &snapshot.state.as_str()),
            ("ADDRESS", &snapshot.address),
            ("LLADDRESS", &lladdress),
            ("MTU", &snapshot.mtu),
        ];
        for (name, value) in fields {
            vars.push(format!("{prefix}{name}={value}"));
        }
    }
    vars
}

struct Running {
    child: Child,
    state: &'static str,
    started: Instant,
}

/// The hook runner: a queue of calls, one running at a time.
pub struct Hooks {
    path: PathBuf,
    iface: String,
    index: u32,
    last: Snapshot,
    /// Calls waiting to run, oldest first, as (previous, new) state: the
    /// environment is built when the call starts. A plain `Vec`: it holds a
    /// few calls at most, so taking from the front costs nothing.
    queue: Vec<(Snapshot, Snapshot)>,
    running: Option<Running>,
}

impl Hooks {
    /// A runner for `path` about interface `iface` (index `index`).
    pub fn new(path: PathBuf, iface: &str, index: u32) -> Self {
        Hooks {
            path,
            iface: iface.to_owned(),
            index,
            last: Snapshot::INITIAL,
            queue: Vec::new(),
            running: None,
        }
    }

    /// The state the last queued call described.
    pub fn last(&self) -> Snapshot {
        self.last
    }

    /// Queue a call for the change to `new` (none if nothing changed) and
    /// start it if no hook is running.
    pub fn change(&mut self, new: Snapshot, now: Instant) {
        if new == self.last {
            return;
        }
        self.queue.push((self.last, new));
        self.last = new;
        self.poll(now);
    }

    /// A hook is running or waiting: the loop should call [`Hooks::poll`]
    /// within [`HOOK_POLL`].
    pub fn busy(&self) -> bool {
        self.running.is_some() || !self.queue.is_empty()
    }

    /// Reap a finished hook, kill an overdue one, start the next.
    pub fn poll(&mut self, now: Instant) {
        if let Some(run) = &mut self.running {
            let state = run.state;
            match run.child.try_wait() {
                Ok(None) if now - run.started < HOOK_TIMEOUT => return,
                Ok(None) => {
                    let secs = HOOK_TIMEOUT.total_millis() / 1000;
                    warn!("hook (STATE={state}) still running after {secs} s: killed");
                    // Our own child, by its handle: kill then reap.
                    let _ = run.child.kill();
                }
                Ok(Some(status)) if status.success() => {
                    let took = (now - run.started).total_millis();
                    info!("hook (STATE={state}) succeeded in {took} ms");
                }
                Ok(Some(status)) => warn!("hook (STATE={state}) failed: {status}"),
                Err(e) => error!("cannot wait for the hook: {e}"),
            }
            self.running = None;
        }
        while !self.queue.is_empty() {
            let (old, new) = self.queue.remove(0);
            let state = new.state.as_str();
            let path = self.path.display();
            debug!("running hook {path} (STATE={state})");
            let env = environment(&self.iface, self.index, &old, &new);
            match spawn(&self.path, &[], &env) {
                Ok(child) => {
                    self.running = Some(Running {
                        child,
                        state,
                        started: now,
                    });
                    return;
                }
                Err(e) => error!("cannot run hook {path} (STATE={state}): {e}"),
            }
        }
    }

    /// Run everything queued to the end, waiting at most `limit` in all
    /// (at shutdown, where waiting is right).
    pub fn finish(&mut self, limit: Duration) {
        let deadline = clock::now() + limit;
        while self.busy() {
            let now = clock::now();
            if now >= deadline {
                if let Some(mut run) = self.running.take() {
                    warn!("hook (STATE={}) killed at shutdown", run.state);
                    let _ = run.child.kill();
                }
                if !self.queue.is_empty() {
                    warn!("{} hook calls skipped at shutdown", self.queue.len());
                    self.queue.clear();
                }
                return;
            }
            self.poll(now);
            std::thread::sleep(std::time::Duration::from_millis(HOOK_POLL.total_millis()));
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use std::path::Path;

    fn up(addr: &str, cone: bool) -> Snapshot {
        Snapshot {
            state: HookState::Up,
            address: addr.parse().unwrap(),
            cone,
            mtu: 1280,
        }
    }

    fn get<'a>(env: &'a [String], k: &str) -> &'a str {
        let value = |v: &'a String| v.strip_prefix(k)?.strip_prefix('=');
        env.iter().find_map(value).unwrap()
    }

    #[test]
    fn first_up_then_down_then_destroy() {
        let a = up("2001:0:c633:6401:1411:6804:39cc:9bea", false);
        let env = environment("teredo", 7, &Snapshot::INITIAL, &a);
        let want = [
            ("IFACE", "teredo"),
            ("IFINDEX", "7"),
            ("STATE", "up"),
            ("ADDRESS", "2001:0:c633:6401:1411:6804:39cc:9bea"),
            ("LLADDRESS", "fe80::ffff:ffff:ffff"),
            ("MTU", "1280"),
            ("OLD_STATE", "down"),
            ("OLD_ADDRESS", "::"),
            ("OLD_LLADDRESS", "fe80::ffff:ffff:ffff"),
            ("OLD_MTU", "1280"),
        ];
        assert_eq!(env.len(), want.len());
        for (k, v) in want {
            assert_eq!(get(&env, k), v, "{k}");
        }
        let down = a.down();
        let env = environment("teredo", 7, &a, &down);
        assert_eq!(get(&env, "STATE"), "down");
        assert_eq!(get(&env, "ADDRESS"), "::");
        assert_eq!(get(&env, "OLD_STATE"), "up");
        assert_eq!(
            get(&env, "OLD_ADDRESS"),
            "2001:0:c633:6401:1411:6804:39cc:9bea"
        );
        let destroy = Snapshot {
            state: HookState::Destroy,
            ..down
        };
        let env = environment("teredo", 7, &down, &destroy);
        assert_eq!(get(&env, "STATE"), "destroy");
        assert_eq!(get(&env, "OLD_STATE"), "down");
    }

    #[test]
    fn cone_address_gets_cone_link_local() {
        let c = up("2001:0:c633:6401:8000:6804:39cc:9bea", true);
        let env = environment("teredo", 1, &Snapshot::INITIAL, &c);
        assert_eq!(get(&env, "LLADDRESS"), "fe80::8000:5445:5245:444f");
    }

    /// A hook script in a fresh directory named `tag`: `body` runs after
    /// the script appends its `$STATE $ADDRESS $OLD_STATE` to the file
    /// returned second.
    fn script(tag: &str, body: &str) -> (PathBuf, PathBuf) {
        let dir = std::env::temp_dir().join(format!("swhook-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("calls");
        let script = dir.join("hook");
        let text = format!(
            "#!/bin/sh\necho \"$STATE $ADDRESS $OLD_STATE\" >> {}\n{body}\n",
            out.display()
        );
        std::fs::write(&script, text).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        (script, out)
    }

    /// Waits (5 s at most) until the script has recorded `n` calls.
    fn wait_for_calls(out: &Path, n: usize) {
        for _ in 0..500 {
            if std::fs::read_to_string(out).is_ok_and(|c| c.lines().count() >= n) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// Runs a real program that records the environment it got.
    #[test]
    fn runs_in_order_without_blocking_and_logs_status() {
        let (script, out) = script("order", "exit 3");
        let mut hooks = Hooks::new(script, "teredo", 3);
        let a = up("2001:0:c633:6401::1", false);
        let now = clock::now();
        hooks.change(a, now);
        hooks.change(a, now); // no change: no call
        hooks.change(a.down(), now);
        assert!(hooks.busy());
        hooks.finish(Duration::from_secs(10));
        assert!(!hooks.busy());
        let calls = std::fs::read_to_string(&out).unwrap();
        assert_eq!(calls, "up 2001:0:c633:6401::1 down\ndown :: up\n");
        std::fs::remove_dir_all(out.parent().unwrap()).unwrap();
    }

    /// A hook past [`HOOK_TIMEOUT`] is killed and reaped, and the next call
    /// starts; at shutdown a running one is killed and the rest skipped.
    #[test]
    fn overdue_hooks_are_killed() {
        let (script, out) = script("timeout", "[ \"$STATE\" = down ] || exec sleep 30");
        let mut hooks = Hooks::new(script, "teredo", 3);
        let a = up("2001::1", false);
        let now = clock::now();
        hooks.change(a, now);
        hooks.change(a.down(), now);
        // Until `up` has recorded its call (then it sleeps), down waits.
        wait_for_calls(&out, 1);
        hooks.poll(now + HOOK_POLL);
        assert_eq!(hooks.queue.len(), 1);
        hooks.poll(now + HOOK_TIMEOUT); // up killed, down started
        assert!(hooks.queue.is_empty());
        hooks.finish(Duration::from_secs(10));
        assert!(!hooks.busy());

        let started = clock::now();
        hooks.change(a, started);
        hooks.change(a.down(), started);
        wait_for_calls(&out, 3);
        hooks.finish(Duration::from_millis(200));
        assert!(!hooks.busy());
        assert!(clock::now() - started < Duration::from_secs(10));
        let calls = std::fs::read_to_string(&out).unwrap();
        assert_eq!(calls, "up 2001::1 down\ndown :: up\nup 2001::1 down\n");
        std::fs::remove_dir_all(out.parent().unwrap()).unwrap();
    }

    #[test]
    fn missing_program_is_logged_not_fatal() {
        let mut hooks = Hooks::new("/nonexistent/shipworm-hook".into(), "teredo", 3);
        hooks.change(up("2001::1", false), clock::now());
        assert!(!hooks.busy());
    }
}
