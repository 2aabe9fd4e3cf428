//! The refresh scheduler run by `latch serve` and the desktop app: refreshes access tokens a
//! little before they expire (so requests rarely wait for a refresh) and rotates idle refresh
//! tokens long before the provider's inactivity expiry (Atlassian: 90 days).

use std::sync::Arc;
use std::time::Duration;

use crate::clock::now;
use crate::credential::Credentials;
use crate::grant::token_cache::refresh_at;
use crate::grant::{GrantKind, GrantState};

/// How often the scheduler looks.
pub const TICK: Duration = Duration::from_secs(30);

/// Rotate a refresh token that has been idle this long, whatever the provider's limit.
const KEEP_ALIVE_AFTER: time::Duration = time::Duration::days(7);

/// Runs forever; cancel the task to stop it.
pub async fn run(credentials: Arc<Credentials>) {
    loop {
        tick(&credentials).await;
        tokio::time::sleep(TICK).await;
    }
}

/// One pass over every grant. Failures are recorded on the grant (and shown by `status`).
pub async fn tick(credentials: &Credentials) {
    let grants = credentials.grants();
    for id in credentials.grant_ids() {
        let Ok(Some(row)) = grants.row(&id) else {
            continue;
        };
        // Only the person (or an admin, for a refused service credential) can mend these.
        if matches!(
            row.state,
            GrantState::NeedsLogin | GrantState::CredentialRejected
        ) {
            continue;
        }
        let soon = now() + time::Duration::seconds(2 * TICK.as_secs() as i64);
        let expiring = refresh_at(&row).is_none_or(|at| at <= soon);
        let last_rotation = row.refreshed_at.or(row.obtained_at);
        let idle = row.kind == GrantKind::User
            && last_rotation.is_some_and(|t| now() - t > KEEP_ALIVE_AFTER);
        if expiring {
            let _ = grants
                .access_token(&id, &credentials.mint_for(&id), None)
                .await;
        } else if idle {
            let _ = credentials.refresh_grant(&id).await;
        }
    }
}
