//! `latch tray`: what stays when the window closes — the proxy, the refresh scheduler, the
//! tray icon (a StatusNotifierItem over D-Bus, no toolkit) and the notifications, in a small
//! process without a webview. The desktop app starts it and opens its window beside it; the
//! window (`latch-desktop`) comes and goes. The icon's colour is the worst connector state; its
//! menu lists each connector's state and offers Open Latch, Pause proxy and Quit.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use clap::Args;
use ksni::TrayMethods as _;
use latch_core::app::serving::{self, Claim};
use latch_core::config::home::Home;
use latch_core::health::attention::{newly_needing, overall, Attention, Overall};
use latch_core::health::status::StatusReport;
use latch_runtime::{Runtime, RuntimeEvent};

use crate::exit::Failure;
use crate::open_latch_at;
use crate::serve::{one_thread, wait_for_signal};

/// How this face names itself where it serves a home.
pub(crate) const BY: &str = "the Latch tray";

/// How often the status is read again: refreshes, the CLI and the window change it outside
/// this process.
const TICK: Duration = Duration::from_secs(2);

#[derive(Args)]
pub(crate) struct TrayCmd {
    /// Wait until the home is free and then serve it, instead of failing when another process
    /// serves it (a window handing over as it closes).
    #[arg(long)]
    wait: bool,
}

impl TrayCmd {
    pub(crate) fn run(self) -> Result<(), Failure> {
        let home = Home::from_env()?;
        one_thread()?.block_on(async move {
            let app = Arc::new(open_latch_at(home)?);
            let claim = if self.wait {
                let home = app.home().clone();
                tokio::task::spawn_blocking(move || serving::claim_when_free(&home, BY))
                    .await
                    .map_err(|e| Failure::internal(e.to_string()))?
                    .map_err(|e| Failure::internal(format!("cannot serve this home: {e}")))?
            } else {
                match serving::claim(app.home(), BY) {
                    Ok(Claim::Claimed(claim)) => claim,
                    Ok(Claim::Held(owner)) => {
                        return Err(Failure::coded_error(
                            latch_core::ErrorCode::AlreadyServed,
                            format!(
                                "this home is already served {}",
                                owner.map_or_else(
                                    || "by another Latch".to_owned(),
                                    |o| o.describe()
                                )
                            ),
                        ))
                    }
                    Err(err) => {
                        return Err(Failure::internal(format!(
                            "cannot claim this home for serving: {err}"
                        )))
                    }
                }
            };
            let events: latch_runtime::Events = Arc::new(|event| match event {
                RuntimeEvent::Reloaded => tracing::info!("serving the changed latch.toml"),
                RuntimeEvent::ReloadFailed(err) => {
                    tracing::warn!(%err, "latch.toml changed but cannot be used")
                }
                RuntimeEvent::Moved(addr) => tracing::info!(%addr, "the proxy moved"),
            });
            let (runtime, failed) = Runtime::start(Arc::clone(&app), claim, None, true, events)
                .await
                .map_err(|e| Failure::internal(e.to_string()))?;
            if let Some(err) = failed {
                eprintln!("latch tray: the proxy cannot listen ({err}); tokens are kept fresh");
            }
            let quit = Arc::new(tokio::sync::Notify::new());
            let icon = LatchTray {
                overall: Overall::Idle,
                lines: Vec::new(),
                paused: false,
                runtime: Arc::clone(&runtime),
                quit: Arc::clone(&quit),
            };
            // Without a tray host yet (the desktop still starting), the item waits for one.
            let handle = match icon.assume_sni_available(true).spawn().await {
                Ok(handle) => Some(handle),
                Err(err) => {
                    eprintln!("latch tray: no tray icon ({err}); serving without one");
                    None
                }
            };
            let watch = tokio::spawn(watch(Arc::clone(&runtime), handle.clone()));
            tokio::select! {
                () = wait_for_signal() => {}
                () = quit.notified() => {}
            }
            watch.abort();
            if let Some(handle) = handle {
                handle.shutdown().await;
            }
            runtime.shutdown().await;
            Ok(())
        })
    }
}

/// Reads the status every [`TICK`]: recolours the icon, rebuilds its menu and notifies the
/// person when a connector newly needs them.
async fn watch(runtime: Arc<Runtime>, handle: Option<ksni::Handle<LatchTray>>) {
    let notifier = Notifier::connect().await;
    let mut last: Option<StatusReport> = None;
    let mut last_seen = (String::new(), false);
    let mut tick = tokio::time::interval(TICK);
    loop {
        tick.tick().await;
        let app = Arc::clone(runtime.app());
        let Ok(Ok(report)) = tokio::task::spawn_blocking(move || app.status()).await else {
            continue;
        };
        let seen = (
            serde_json::to_string(&report).unwrap_or_default(),
            runtime.paused(),
        );
        if seen == last_seen {
            continue;
        }
        last_seen = seen;
        if let Some(notifier) = &notifier {
            for attention in newly_needing(last.as_ref(), &report) {
                notifier.notify(&attention).await;
            }
        }
        if let Some(handle) = &handle {
            let lines = menu_lines(&report);
            let now = overall(&report);
            let paused = runtime.paused();
            handle
                .update(move |tray| {
                    tray.overall = now;
                    tray.lines = lines;
                    tray.paused = paused;
                })
                .await;
        }
        last = Some(report);
    }
}

/// One line per connector: its name and state.
fn menu_lines(report: &StatusReport) -> Vec<String> {
    if report.connectors.is_empty() {
        return vec!["No connectors yet".to_owned()];
    }
    report
        .connectors
        .iter()
        .map(|c| format!("{} — {}", c.name, c.state.as_str().replace('_', " ")))
        .collect()
}

/// Desktop notifications (`org.freedesktop.Notifications` on the session bus).
struct Notifier(zbus::Connection);

impl Notifier {
    async fn connect() -> Option<Self> {
        zbus::Connection::session().await.ok().map(Self)
    }

    async fn notify(&self, attention: &Attention) {
        let hints: HashMap<&str, zbus::zvariant::Value<'_>> = HashMap::new();
        let sent = self
            .0
            .call_method(
                Some("org.freedesktop.Notifications"),
                "/org/freedesktop/Notifications",
                Some("org.freedesktop.Notifications"),
                "Notify",
                &(
                    "Latch",
                    0u32,
                    "",
                    attention.title.as_str(),
                    attention.action.as_str(),
                    Vec::<&str>::new(),
                    hints,
                    -1i32,
                ),
            )
            .await;
        if let Err(err) = sent {
            tracing::debug!(%err, "no notification shown");
        }
    }
}

/// The tray icon's model: what it shows and what its menu does.
struct LatchTray {
    overall: Overall,
    lines: Vec<String>,
    paused: bool,
    runtime: Arc<Runtime>,
    quit: Arc<tokio::sync::Notify>,
}

impl ksni::Tray for LatchTray {
    fn id(&self) -> String {
        "latch".to_owned()
    }

    fn title(&self) -> String {
        "Latch".to_owned()
    }

    fn status(&self) -> ksni::Status {
        match self.overall {
            Overall::Error => ksni::Status::NeedsAttention,
            _ => ksni::Status::Active,
        }
    }

    fn icon_pixmap(&self) -> Vec<ksni::Icon> {
        icon(self.overall)
    }

    fn tool_tip(&self) -> ksni::ToolTip {
        ksni::ToolTip {
            title: tooltip(self.overall, self.paused).to_owned(),
            ..Default::default()
        }
    }

    /// A click on the icon opens the window.
    fn activate(&mut self, _x: i32, _y: i32) {
        open_window();
    }

    fn menu(&self) -> Vec<ksni::MenuItem<Self>> {
        use ksni::menu::{CheckmarkItem, StandardItem};
        let mut items: Vec<ksni::MenuItem<Self>> = self
            .lines
            .iter()
            .map(|line| {
                StandardItem {
                    label: line.clone(),
                    enabled: false,
                    ..Default::default()
                }
                .into()
            })
            .collect();
        items.push(ksni::MenuItem::Separator);
        items.push(
            StandardItem {
                label: "Open Latch".to_owned(),
                activate: Box::new(|_: &mut Self| open_window()),
                ..Default::default()
            }
            .into(),
        );
        items.push(
            CheckmarkItem {
                label: "Pause proxy".to_owned(),
                checked: self.paused,
                activate: Box::new(|tray: &mut Self| {
                    tray.paused = !tray.paused;
                    tray.runtime.set_paused(tray.paused);
                }),
                ..Default::default()
            }
            .into(),
        );
        items.push(ksni::MenuItem::Separator);
        items.push(
            StandardItem {
                label: "Quit Latch".to_owned(),
                activate: Box::new(|tray: &mut Self| tray.quit.notify_one()),
                ..Default::default()
            }
            .into(),
        );
        items
    }

    fn watcher_offline(&self, reason: ksni::OfflineReason) -> bool {
        tracing::info!(
            ?reason,
            "no tray host for now; the icon shows when one starts"
        );
        true
    }
}

fn tooltip(overall: Overall, paused: bool) -> &'static str {
    match (paused, overall) {
        (true, _) => "Latch: proxy paused",
        (false, Overall::Idle) => "Latch: no connectors yet",
        (false, Overall::Ok) => "Latch: all connectors ready",
        (false, Overall::Warning) => "Latch: a connector waits for you",
        (false, Overall::Error) => "Latch: a connector needs you",
    }
}

/// The icon for a state, as the StatusNotifierItem wants it (ARGB32, network byte order),
/// decoded once.
fn icon(overall: Overall) -> Vec<ksni::Icon> {
    static ICONS: OnceLock<[Vec<ksni::Icon>; 4]> = OnceLock::new();
    let icons = ICONS.get_or_init(|| {
        [
            include_bytes!("../../icons/tray-idle.png").as_slice(),
            include_bytes!("../../icons/tray-ok.png").as_slice(),
            include_bytes!("../../icons/tray-warning.png").as_slice(),
            include_bytes!("../../icons/tray-error.png").as_slice(),
        ]
        .map(|png| argb(png).into_iter().collect())
    });
    icons[match overall {
        Overall::Idle => 0,
        Overall::Ok => 1,
        Overall::Warning => 2,
        Overall::Error => 3,
    }]
    .clone()
}

/// An RGBA PNG as ARGB32 pixels (none when it does not decode).
fn argb(png: &[u8]) -> Option<ksni::Icon> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::ALPHA);
    let mut reader = decoder.read_info().ok()?;
    let mut rgba = vec![0; reader.output_buffer_size()?];
    let frame = reader.next_frame(&mut rgba).ok()?;
    if frame.color_type != png::ColorType::Rgba || frame.bit_depth != png::BitDepth::Eight {
        return None;
    }
    let data = rgba[..frame.buffer_size()]
        .chunks_exact(4)
        .flat_map(|p| [p[3], p[0], p[1], p[2]])
        .collect();
    Some(ksni::Icon {
        width: i32::try_from(frame.width).ok()?,
        height: i32::try_from(frame.height).ok()?,
        data,
    })
}

/// The desktop app beside this binary (as installed and as built), else on `PATH`.
pub(crate) fn desktop_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .map(|exe| exe.with_file_name("latch-desktop"))
        .filter(|path| path.exists())
        .unwrap_or_else(|| PathBuf::from("latch-desktop"))
}

/// Opens the window: the desktop app, which finds this process serving the home (a second
/// launch only focuses a window that is open).
fn open_window() {
    let program = desktop_binary();
    match std::process::Command::new(&program)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        // Reaped when it exits (the window closed).
        Ok(mut child) => drop(std::thread::spawn(move || child.wait())),
        Err(err) => eprintln!("latch tray: cannot open {}: {err}", program.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_has_an_icon_of_its_own() {
        let icons: Vec<_> = [Overall::Idle, Overall::Ok, Overall::Warning, Overall::Error]
            .map(icon)
            .into_iter()
            .collect();
        for set in &icons {
            assert_eq!(set.len(), 1);
            let icon = &set[0];
            assert_eq!(icon.data.len(), (icon.width * icon.height * 4) as usize);
        }
        assert!(icons.windows(2).all(|w| w[0][0].data != w[1][0].data));
    }
}
