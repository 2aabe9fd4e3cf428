//! What Latch logs, decided once for every face: `LATCH_LOG` (a level, or a full filter with
//! targets) or the CLI's `-v` count. A bare level applies to Latch's own crates only; the
//! libraries under them stay at `warn`, so a debug session does not pick up an HTTP library's
//! view of a request. Latch's own lines never carry a token, key or secret: they log names,
//! states, paths without query strings, statuses and timings.

/// Latch's crates, as tracing targets.
const OURS: &[&str] = &[
    "latch",
    "latch_core",
    "latch_proxy",
    "latch_store",
    "latch_keychain",
    "latch_desktop",
];

/// The filter directive: `LATCH_LOG` when set, else `-v` (0 warn, 1 info, 2 debug, 3+ trace).
pub fn filter(latch_log: Option<&str>, verbosity: u8) -> String {
    match latch_log.map(str::trim).filter(|v| !v.is_empty()) {
        // A full directive (`latch_proxy=debug,hyper=info`): the person's choice.
        Some(directive) if directive.contains('=') || directive.contains(',') => {
            directive.to_owned()
        }
        Some(level) => ours_at(level),
        None => ours_at(match verbosity {
            0 => "warn",
            1 => "info",
            2 => "debug",
            _ => "trace",
        }),
    }
}

fn ours_at(level: &str) -> String {
    let mut directive = "warn".to_owned();
    for target in OURS {
        directive.push_str(&format!(",{target}={level}"));
    }
    directive
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_level_is_ours_only() {
        assert!(filter(Some("debug"), 0).starts_with("warn,latch=debug,"));
        assert!(filter(None, 2).contains("latch_proxy=debug"));
        assert!(filter(None, 0).contains("latch_core=warn"));
        assert_eq!(filter(Some("hyper=trace"), 0), "hyper=trace");
    }
}
