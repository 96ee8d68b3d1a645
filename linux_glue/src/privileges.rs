//! Giving up root once the role is set up.
//!
//! Every role needs root (or `CAP_NET_ADMIN` / `CAP_NET_RAW` /
//! `CAP_NET_BIND_SERVICE`) only to *create* things: the tunnel, the raw
//! socket, port 3544, the relay's route. Once those descriptors are open
//! they work without privileges, so right after set-up the process switches
//! to an unprivileged user (`--user`, default [`DEFAULT_USER`]), optionally
//! `chroot`s (`--chroot`), sets `PR_SET_NO_NEW_PRIVS` and keeps only the
//! capability its role still uses:
//!
//! | role | after set-up | why |
//! |------|--------------|-----|
//! | server | nothing | sockets and raw socket are open; it is stateless |
//! | relay | nothing | the kernel deletes the prefix route with the tunnel when the process exits (routes through a vanished interface vanish with it), so teardown needs no `CAP_NET_ADMIN` |
//! | client | `CAP_NET_ADMIN` (permitted, effective) | every new mapping changes the tunnel's address, MTU and routes over rtnetlink, which checks the capability of the sender at each request |
//! | client `--hook --user U` | `CAP_NET_ADMIN` (also inheritable and ambient) | the hook runs as `U` with `CAP_NET_ADMIN` effective: enough for `ip` |
//! | client `--hook` alone | stays root | see below |
//!
//! # Keeping a capability rather than a privileged helper
//!
//! Miredo forks a helper that stays root and configures the interface on
//! request from the unprivileged process. The client here keeps
//! `CAP_NET_ADMIN` across `setuid` instead (`PR_SET_KEEPCAPS`, then the
//! `capset(2)` system call): a few dozen lines and no second process, no
//! request protocol and no parser on the privileged side. What an attacker
//! who takes over the client gains is the same in both designs for the
//! purpose that matters (reconfiguring the network: the helper would
//! have to accept address and route changes, the whole of what
//! `CAP_NET_ADMIN` is used for here), and less than root: no file system
//! access as root, no other capability (the bounding set is emptied of all
//! others), and no way back through set-user-ID programs (`NO_NEW_PRIVS`).
//!
//! # Hooks
//!
//! A hook is an administrator's program that expects privileges. Two cases:
//! - `--hook` with an explicit `--user`: the hook inherits `CAP_NET_ADMIN`
//!   through the ambient set and runs as that user: scripts that call `ip`
//!   (Miredo's `client-hook` style) work unprivileged;
//! - `--hook` without `--user`: the client stays root (it still sets
//!   `NO_NEW_PRIVS` and honours `--chroot`). OpenWrt's netifd protocol
//!   handler needs this: its hook talks to `ubus`, whose access control
//!   lets only root-owned clients change interfaces. A root helper that
//!   runs hooks for an unprivileged client (Miredo's design) would restore
//!   the separation there; it is left until a router build shows the need.
//!
//! # Other conditions
//!
//! Switching to root (`--user root`, or any user with ID 0) is refused, as
//! Miredo does: it would only look like a drop. An unknown user is a
//! start-up error. A process started without root (e.g. with file
//! capabilities) cannot change user: it only sets `NO_NEW_PRIVS` and keeps
//! its identity. `--chroot` needs a directory holding what the role reads
//! later: for a client with host-name servers, `/etc/resolv.conf` and the C
//! library's name-service files (it resolves again when the server is
//! lost); a hook path is looked up inside it too.

use std::io;
use std::path::{Path, PathBuf};

use log::{debug, info};

use crate::role::Error;
use crate::sys::caps::{self, Cap, CapSet};
use crate::sys::user::{self, Account};

/// The user the roles switch to unless `--user` names another.
pub const DEFAULT_USER: &str = "nobody";

/// The capabilities a role keeps after set-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// None (server, relay).
    Nothing,
    /// `CAP_NET_ADMIN` for the process itself (client).
    NetAdmin,
    /// `CAP_NET_ADMIN`, also passed to programs it runs (client with hook).
    NetAdminInherited,
}

impl Keep {
    fn caps(self) -> &'static [Cap] {
        match self {
            Keep::Nothing => &[],
            Keep::NetAdmin | Keep::NetAdminInherited => &[Cap::NET_ADMIN],
        }
    }
}

/// Who to become, found before set-up so a bad `--user` fails before the
/// tunnel or sockets exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// User name and account; `None`: keep the current user.
    user: Option<(String, Account)>,
    chroot: Option<PathBuf>,
}

impl Target {
    /// The target for a role's `--user` and `--chroot`: `user` or
    /// [`DEFAULT_USER`], except that a client with a hook and no `--user`
    /// stays root (see the module documentation).
    pub fn for_role(
        user: Option<&str>,
        chroot: Option<&Path>,
        hook: bool,
    ) -> Result<Target, Error> {
        match user {
            None if hook => Target::stay(chroot),
            user => Target::resolve(user.unwrap_or(DEFAULT_USER), chroot),
        }
    }

    /// Look `user` up (refusing root) and check `chroot` is a directory.
    pub fn resolve(user: &str, chroot: Option<&Path>) -> Result<Target, Error> {
        let account = match user::lookup(user) {
            Ok(Some(account)) => account,
            Ok(None) => {
                return Err(startup(&[
                    "no user '",
                    user,
                    "' to run as; create it or choose another with '--user'",
                ]))
            }
            Err(e) => return Err(failed(&["cannot look up user '", user, "'"], &e)),
        };
        if account.uid == 0 {
            return Err(startup(&[
                "refusing to run as '",
                user,
                "' (user ID 0): name an unprivileged user with '--user'",
            ]));
        }
        let mut target = Target::stay(chroot)?;
        target.user = Some((user.to_owned(), account));
        Ok(target)
    }

    /// Keep the current user (only `chroot` and `NO_NEW_PRIVS` apply).
    pub fn stay(chroot: Option<&Path>) -> Result<Target, Error> {
        if let Some(dir) = chroot {
            if !dir.is_dir() {
                return Err(startup(&[
                    "'",
                    &dir.to_string_lossy(),
                    "' for '--chroot' is not a directory",
                ]));
            }
        }
        Ok(Target {
            user: None,
            chroot: chroot.map(Path::to_path_buf),
        })
    }

    /// The account switched to, if any (owner of the status socket).
    pub fn account(&self) -> Option<Account> {
        self.user.as_ref().map(|&(_, a)| a)
    }

    /// Chroot, switch user keeping `keep`, set `NO_NEW_PRIVS`. Any failure is
    /// a start-up error: running with more privileges than asked is not an
    /// option.
    pub fn apply(&self, keep: Keep) -> Result<(), Error> {
        if let Some(dir) = &self.chroot {
            user::chroot(dir)
                .map_err(|e| failed(&["cannot chroot to ", &dir.to_string_lossy()], &e))?;
        }
        match &self.user {
            Some((name, account)) if is_root() => {
                let set = CapSet::of(keep.caps());
                let inheritable = match keep {
                    Keep::NetAdminInherited => set,
                    _ => CapSet::EMPTY,
                };
                step(
                    caps::limit_bounding_set(set),
                    "cannot limit the capability bounding set",
                )?;
                step(
                    caps::keep_across_setuid(set != CapSet::EMPTY),
                    "cannot set PR_SET_KEEPCAPS",
                )?;
                user::become_user(*account)
                    .map_err(|e| failed(&["cannot switch to user '", name, "'"], &e))?;
                step(caps::set(set, set, inheritable), "capset(2) failed")?;
                if keep == Keep::NetAdminInherited {
                    step(
                        caps::set_ambient(keep.caps()),
                        "cannot raise the ambient capabilities",
                    )?;
                }
                step(
                    caps::keep_across_setuid(false),
                    "cannot clear PR_SET_KEEPCAPS",
                )?;
                if user::can_regain_root() {
                    return Err(startup(&[
                        "switched to user '",
                        name,
                        "' but could become root again",
                    ]));
                }
                info!(
                    "running as user {name} (uid {}, gid {}) {}",
                    account.uid,
                    account.gid,
                    if set == CapSet::EMPTY {
                        "without capabilities"
                    } else {
                        "with CAP_NET_ADMIN"
                    }
                );
            }
            Some((name, _)) => debug!("not started as root: not switching to user '{name}'"),
            None => {}
        }
        step(caps::no_new_privs(), "cannot set PR_SET_NO_NEW_PRIVS")
    }
}

fn is_root() -> bool {
    user::real_uid() == 0
}

/// A start-up error whose message is `parts` joined: one shared
/// allocation path instead of a `format!` at every site.
#[inline(never)]
fn startup(parts: &[&str]) -> Error {
    Error::Startup(parts.concat())
}

/// The start-up error "`what`: `e`".
#[inline(never)]
fn failed(what: &[&str], e: &io::Error) -> Error {
    let mut message = what.concat();
    message.push_str(": ");
    message.push_str(&e.to_string());
    Error::Startup(message)
}

/// `result`, or the start-up error "`what`: error" (one set-up step).
#[inline(never)]
fn step(result: io::Result<()>, what: &'static str) -> Result<(), Error> {
    result.map_err(|e| failed(&[what], &e))
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn resolve_refuses_root_and_unknown_users() {
        let e = Target::resolve("root", None).unwrap_err();
        assert!(e.to_string().contains("refusing to run as 'root'"));
        assert_eq!(e.exit_code(), 2);
        let e = Target::resolve("no-such-user-shipworm", None).unwrap_err();
        assert!(e.to_string().contains("no user 'no-such-user-shipworm'"));
        let e = Target::resolve("nobody", Some(Path::new("/nonexistent/dir"))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "'/nonexistent/dir' for '--chroot' is not a directory"
        );
    }

    #[test]
    fn messages() {
        assert_eq!(startup(&["a '", "b", "' c"]).to_string(), "a 'b' c");
        let e = failed(
            &["cannot switch to user '", "x", "'"],
            &io::Error::from_raw_os_error(libc::EPERM),
        );
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.to_string()
                .starts_with("cannot switch to user 'x': Operation not permitted"),
            "{e}"
        );
        assert!(step(Ok(()), "x").is_ok());
    }

    #[test]
    fn resolve_finds_nobody() {
        // Present on every Linux system the tests run on.
        let t = Target::resolve(DEFAULT_USER, Some(Path::new("/"))).unwrap();
        assert!(t.account().is_some_and(|a| a.uid != 0));
        assert_eq!(Target::stay(None).unwrap().account(), None);
    }
}
