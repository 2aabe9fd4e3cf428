//! One proxy and one refresh scheduler per home: whichever of `latch serve` and the desktop app
//! starts first claims the home (an OS lock on `locks/serve.lock`, released by the OS when its
//! holder dies) and says where it serves (`locks/serve.json`); the other shows that and stays
//! out of the way. `latch exec`'s private proxies claim nothing. Any face may pause the home's
//! proxy (`locks/proxy.paused`): the serving process honours it within its watch's tick.

use std::fs::{File, TryLockError};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::home::Home;

/// Who serves a home, as every face shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Serving {
    /// `latch serve`, `the Latch tray` or `the desktop app`.
    pub by: String,
    /// Its process id.
    pub pid: u32,
    /// Where its proxy listens (none while its port is taken by another program).
    pub addr: Option<String>,
    /// Since when.
    #[serde(with = "crate::clock::stamp")]
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub since: time::OffsetDateTime,
    /// Whether its proxy is paused (tools get 503 `proxy_paused`).
    #[serde(default)]
    pub paused: bool,
    /// Whether it looks at latch.toml and the pause at once on SIGUSR1 ([`nudge`]).
    #[serde(default)]
    pub reloads_on_sigusr1: bool,
}

impl Serving {
    /// "on 127.0.0.1:7391 (latch serve, pid 4242)".
    pub fn describe(&self) -> String {
        match &self.addr {
            Some(addr) => format!("on {addr} ({}, pid {})", self.by, self.pid),
            None => format!("without a proxy ({}, pid {})", self.by, self.pid),
        }
    }
}

/// This process serves the home while it holds this.
#[derive(Debug)]
pub struct ServeClaim {
    _lock: File,
    facts: PathBuf,
    by: String,
    since: time::OffsetDateTime,
    /// Set once the holder handles SIGUSR1 (until then the signal's default would end it).
    nudgeable: std::sync::atomic::AtomicBool,
}

/// What claiming found.
#[derive(Debug)]
pub enum Claim {
    /// The home is this process's to serve.
    Claimed(ServeClaim),
    /// Another process serves it.
    Held(Option<Serving>),
}

fn lock_path(home: &Home) -> PathBuf {
    home.locks_dir().join("serve.lock")
}

fn facts_path(home: &Home) -> PathBuf {
    home.locks_dir().join("serve.json")
}

fn pause_path(home: &Home) -> PathBuf {
    home.locks_dir().join("proxy.paused")
}

/// Pauses or resumes the home's proxy, whichever process serves it.
pub fn set_paused(home: &Home, paused: bool) -> std::io::Result<()> {
    let path = pause_path(home);
    if paused {
        std::fs::create_dir_all(home.locks_dir())?;
        File::create(&path)?;
        crate::config::home::private_file(&path);
        Ok(())
    } else {
        match std::fs::remove_file(&path) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err),
            _ => Ok(()),
        }
    }
}

/// Whether the home's proxy is paused.
pub fn paused(home: &Home) -> bool {
    pause_path(home).exists()
}

/// Asks the process serving the home (another one) to look at latch.toml and the pause now
/// rather than at its next tick: a SIGUSR1, sent only to a server that says it handles one.
pub fn nudge(home: &Home) -> bool {
    let Some(server) = serving(home) else {
        return false;
    };
    if !server.reloads_on_sigusr1 || server.pid == std::process::id() {
        return false;
    }
    let Some(pid) = i32::try_from(server.pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    rustix::process::kill_process(pid, rustix::process::Signal::USR1).is_ok()
}

fn open_lock(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    crate::config::home::private_file(path);
    Ok(file)
}

/// Claims a home for `by`, unless another process serves it. Readers ([`serving`]) hold the
/// lock shared for an instant: a claim tries a few times before it says "held".
pub fn claim(home: &Home, by: &str) -> std::io::Result<Claim> {
    let file = open_lock(&lock_path(home))?;
    for _ in 0..20 {
        match file.try_lock() {
            Ok(()) => return Ok(Claim::Claimed(claimed(home, file, by))),
            Err(TryLockError::WouldBlock) => {
                if let Some(owner) = read_facts(home) {
                    return Ok(Claim::Held(Some(owner)));
                }
                // A reader's instant, or an owner that has not written its facts yet.
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(TryLockError::Error(err)) => return Err(err),
        }
    }
    Ok(Claim::Held(read_facts(home)))
}

/// Waits until the home is free, then claims it (the desktop app taking over when `latch serve`
/// exits). Blocks: run it on a thread of its own.
pub fn claim_when_free(home: &Home, by: &str) -> std::io::Result<ServeClaim> {
    let file = open_lock(&lock_path(home))?;
    file.lock()?;
    Ok(claimed(home, file, by))
}

fn claimed(home: &Home, file: File, by: &str) -> ServeClaim {
    let claim = ServeClaim {
        _lock: file,
        facts: facts_path(home),
        by: by.to_owned(),
        since: crate::clock::now(),
        nudgeable: std::sync::atomic::AtomicBool::new(false),
    };
    // Until the proxy listens: this process serves, without an address yet.
    let _ = claim.announce(None);
    claim
}

impl ServeClaim {
    /// The holder now handles SIGUSR1: other faces may [`nudge`] it (said at the next
    /// [`ServeClaim::announce`]).
    pub fn accept_nudges(&self) {
        self.nudgeable
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Says where this process's proxy listens (written atomically for readers).
    pub fn announce(&self, addr: Option<SocketAddr>) -> std::io::Result<()> {
        let facts = Serving {
            by: self.by.clone(),
            pid: std::process::id(),
            addr: addr.map(|a| a.to_string()),
            since: self.since,
            paused: false,
            reloads_on_sigusr1: self.nudgeable.load(std::sync::atomic::Ordering::Relaxed),
        };
        let text = serde_json::to_string(&facts).map_err(std::io::Error::other)?;
        let temp = self.facts.with_extension("json.tmp");
        let mut file = File::create(&temp)?;
        crate::config::home::private_file(&temp);
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temp, &self.facts)
    }
}

fn read_facts(home: &Home) -> Option<Serving> {
    let text = std::fs::read_to_string(facts_path(home)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Who serves the home now, if anyone (the lock tells; the facts file only describes).
pub fn serving(home: &Home) -> Option<Serving> {
    let path = lock_path(home);
    let file = std::fs::OpenOptions::new().read(true).open(&path).ok()?;
    match file.try_lock_shared() {
        // Nobody holds it: whatever the facts file says is stale.
        Ok(()) => {
            let _ = file.unlock();
            None
        }
        Err(TryLockError::WouldBlock) => read_facts(home).map(|facts| Serving {
            paused: paused(home),
            ..facts
        }),
        Err(TryLockError::Error(_)) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_process_serves_a_home_and_says_where() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        assert_eq!(serving(&home), None);
        let Claim::Claimed(first) = claim(&home, "latch serve").unwrap() else {
            panic!("a free home is claimed");
        };
        first
            .announce(Some("127.0.0.1:7391".parse().unwrap()))
            .unwrap();
        let seen = serving(&home).unwrap();
        assert_eq!(seen.by, "latch serve");
        assert_eq!(seen.addr.as_deref(), Some("127.0.0.1:7391"));
        assert_eq!(
            seen.describe(),
            format!(
                "on 127.0.0.1:7391 (latch serve, pid {})",
                std::process::id()
            )
        );
        match claim(&home, "the desktop app").unwrap() {
            Claim::Held(Some(owner)) => assert_eq!(owner, seen),
            other => panic!("{other:?}"),
        }
        drop(first);
        assert_eq!(
            serving(&home),
            None,
            "a released claim leaves stale facts unread"
        );
        assert!(matches!(
            claim(&home, "the desktop app").unwrap(),
            Claim::Claimed(_)
        ));
    }

    #[test]
    fn any_face_pauses_the_home_and_the_server_is_seen_paused() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        let Claim::Claimed(_claim) = claim(&home, "the Latch tray").unwrap() else {
            panic!("a free home is claimed");
        };
        assert!(!serving(&home).unwrap().paused);
        set_paused(&home, true).unwrap();
        assert!(paused(&home) && serving(&home).unwrap().paused);
        set_paused(&home, false).unwrap();
        set_paused(&home, false).unwrap();
        assert!(!paused(&home) && !serving(&home).unwrap().paused);
    }
}
