//! Retrying a token request: bounded attempts with backoff, and the caller decides which
//! failures are worth another try. Used by every credential kind that talks to a token endpoint.

use std::future::Future;
use std::time::Duration;

/// What to do after a failed attempt.
pub(crate) enum Next {
    /// Try again after a backoff.
    Backoff,
    /// Try again at once (a resend that must stay inside a time window).
    Now,
    /// Give up with this error.
    Stop,
}

/// How many times a transient token-endpoint failure is tried in all.
pub(crate) const MAX_ATTEMPTS: u32 = 3;

/// Runs `attempt` until it succeeds, `decide` says stop, or `MAX_ATTEMPTS` backoffs are spent.
/// `decide` sees the error and how many attempts have been made.
pub(crate) async fn retry<T, E, F, Fut>(
    mut attempt: F,
    mut decide: impl FnMut(&E, u32) -> Next,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let err = match attempt().await {
            Ok(value) => return Ok(value),
            Err(err) => err,
        };
        match decide(&err, attempts) {
            Next::Backoff if attempts < MAX_ATTEMPTS => {
                tokio::time::sleep(Duration::from_millis(250 << attempts.min(6))).await;
            }
            Next::Now => {}
            Next::Backoff | Next::Stop => return Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn backoff_is_bounded_and_stop_is_immediate() {
        let mut calls = 0;
        let r: Result<(), &str> = retry(
            || {
                calls += 1;
                async { Err("down") }
            },
            |_, _| Next::Backoff,
        )
        .await;
        assert_eq!((r, calls), (Err("down"), MAX_ATTEMPTS));
        let mut calls = 0;
        let r: Result<(), &str> = retry(
            || {
                calls += 1;
                async { Err("dead") }
            },
            |_, _| Next::Stop,
        )
        .await;
        assert_eq!((r, calls), (Err("dead"), 1));
        let mut calls = 0;
        let r: Result<u8, &str> = retry(
            || {
                calls += 1;
                let n = calls;
                async move {
                    if n < 2 {
                        Err("lost")
                    } else {
                        Ok(7)
                    }
                }
            },
            |_, n| if n == 1 { Next::Now } else { Next::Stop },
        )
        .await;
        assert_eq!((r, calls), (Ok(7), 2));
    }
}
