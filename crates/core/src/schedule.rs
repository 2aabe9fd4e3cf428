//! The refresh scheduler run by `latch serve` and the desktop app: refreshes access tokens a
//! little before they expire (so requests rarely wait for a refresh) and rotates idle refresh
//! tokens long before the provider's inactivity expiry (Atlassian: 90 days).

use std::sync::Arc;
use std::time::Duration;

use crate::grants::{now, parse_time, refresh_at, state, Grants};

/// How often the scheduler looks.
pub const TICK: Duration = Duration::from_secs(30);

/// Rotate a refresh token that has been idle this long, whatever the provider's limit.
const KEEP_ALIVE_AFTER: time::Duration = time::Duration::days(7);

/// Runs forever; cancel the task to stop it.
pub async fn run(grants: Arc<Grants>) {
    loop {
        tick(&grants).await;
        tokio::time::sleep(TICK).await;
    }
}

/// One pass over every grant. Failures are recorded on the grant (and shown by `status`).
pub async fn tick(grants: &Grants) {
    for id in grants.grant_ids() {
        let Ok(Some(row)) = grants.row(&id) else {
            continue;
        };
        if row.state == state::NEEDS_LOGIN {
            continue;
        }
        let soon = now() + time::Duration::seconds(TICK.as_secs() as i64 * 2);
        let expiring = refresh_at(&row).is_none_or(|at| at <= soon);
        let last_rotation = parse_time(row.refreshed_at.as_deref().or(row.obtained_at.as_deref()));
        let idle =
            row.kind == "user" && last_rotation.is_some_and(|t| now() - t > KEEP_ALIVE_AFTER);
        if expiring {
            let _ = grants.access_token(&id).await;
        } else if idle {
            let _ = grants.refresh_now(&id).await;
        }
    }
}
