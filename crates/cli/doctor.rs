//! `latch doctor [--json] [--probe] [--report FILE]`. Exit 0 when healthy, 1 when any finding is
//! an error, 2 when the doctor itself could not run.

use std::path::PathBuf;

use clap::Args;

use crate::exit::Failure;
use crate::{open_latch, print_json, runtime};

#[derive(Args)]
pub(crate) struct DoctorCmd {
    /// Print JSON (schema `latch.doctor/v1`).
    #[arg(long)]
    pub(crate) json: bool,
    /// Kept for scripts: probing is the default now (each credential is proven alive, then
    /// each connector's health probe is called).
    #[arg(long, hide = true)]
    probe: bool,
    /// Skip the network: no refresh, token request or probe (facts as last seen).
    #[arg(long, conflicts_with = "probe")]
    offline: bool,
    /// Write the self-contained HTML admin report here (and the JSON next to it, `.json`).
    #[arg(long)]
    report: Option<PathBuf>,
}

impl DoctorCmd {
    pub(crate) fn run(self) -> Result<std::process::ExitCode, Failure> {
        let latch = open_latch().map_err(Failure::doctor)?;
        let report = runtime()?
            .block_on(latch.doctor(latch_core::health::doctor::DoctorOptions {
                offline: self.offline,
            }))
            .map_err(Failure::doctor)?;
        if let Some(path) = &self.report {
            let html = latch_core::health::doctor::render_html(&report);
            std::fs::write(path, html).map_err(|e| {
                Failure::doctor(Failure::internal(format!(
                    "cannot write {}: {e}",
                    path.display()
                )))
            })?;
            let json = serde_json::to_string_pretty(&report)
                .map_err(|e| Failure::internal(e.to_string()))?;
            std::fs::write(path.with_extension("json"), json).map_err(|e| {
                Failure::doctor(Failure::internal(format!(
                    "cannot write the JSON report: {e}"
                )))
            })?;
            eprintln!(
                "Wrote {} and {}",
                path.display(),
                path.with_extension("json").display()
            );
        }
        if self.json {
            print_json(&report)?;
        } else {
            for f in &report.findings {
                let mark = match f.severity {
                    latch_core::finding::Severity::Error => "✗ error",
                    latch_core::finding::Severity::Warning => "! warning",
                    latch_core::finding::Severity::Info => "· info",
                };
                say!(
                    "{mark} [{}] {}: {}\n    fix: {}",
                    f.code,
                    f.subject,
                    f.message,
                    f.fix
                );
            }
            for c in &report.connectors {
                let probe = c
                    .probe
                    .as_ref()
                    .map(|p| {
                        format!(
                            ", probe {} → {}",
                            p.request,
                            p.status.map_or("no answer".to_owned(), |s| s.to_string())
                        )
                    })
                    .unwrap_or_default();
                say!("connector {}: {}{probe}", c.name, c.state.as_str());
            }
            say!(
                "{}: {} error(s), {} warning(s)",
                if report.healthy {
                    "healthy"
                } else {
                    "needs attention"
                },
                report.summary.errors,
                report.summary.warnings
            );
        }
        Ok(if report.healthy {
            std::process::ExitCode::SUCCESS
        } else {
            std::process::ExitCode::from(1)
        })
    }
}
