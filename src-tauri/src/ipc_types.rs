//! The webview's contract, generated: every type a command takes or returns (ts-rs, from the
//! Rust types themselves) and the command names, in `ui/src/ipc/generated.ts`. `make test`
//! fails when that file is stale; `make ipc-types` rewrites it.

use std::collections::BTreeSet;

use ts_rs::TS;

use crate::command_names::COMMANDS;

/// The file, as the Rust types say it should be.
fn generated() -> String {
    use latch_core::{
        app::audit, app::sign_in, credential, finding, health::doctor, local_key, provider::catalog,
    };
    use latch_core::{config, health::status, provider::scope};
    let declarations = [
        // Status.
        status::StatusReport::decl(),
        status::HomeStatus::decl(),
        status::ProviderStatus::decl(),
        status::ClientSecretState::decl(),
        status::SiteStatus::decl(),
        status::GrantStatus::decl(),
        status::ConnectorStatus::decl(),
        status::ConnectorState::decl(),
        status::CredentialStatus::decl(),
        status::CredentialStorage::decl(),
        status::ConnectStatus::decl(),
        status::ConnectorAttention::decl(),
        status::Carries::decl(),
        latch_core::ports::KeychainState::decl(),
        latch_core::app::serving::Serving::decl(),
        latch_store::GrantState::decl(),
        latch_store::GrantKind::decl(),
        latch_store::CredentialState::decl(),
        latch_store::ApiTokenKind::decl(),
        status::ConnectorScopes::decl(),
        scope::Scope::decl(),
        scope::ScopeList::decl(),
        scope::RequestedScope::decl(),
        latch_core::provider::ProviderKind::decl(),
        scope::MergeDiff::decl(),
        scope::ScopeRequest::decl(),
        finding::Finding::decl(),
        finding::Severity::decl(),
        config::ScopeSet::decl(),
        // Catalog and changes.
        catalog::CatalogEntries::decl(),
        catalog::PresetEntry::decl(),
        catalog::ConnectorEntry::decl(),
        catalog::AuthMode::decl(),
        catalog::ClientType::decl(),
        latch_core::app::ProviderAdded::decl(),
        latch_core::app::LinkPublicKey::decl(),
        status::LinkStatus::decl(),
        status::ClientCertStatus::decl(),
        latch_core::app::AddConnector::decl(),
        config::ConnectorSettings::decl(),
        latch_core::app::ConnectorPreview::decl(),
        latch_core::app::ConnectorAdded::decl(),
        latch_core::app::ConnectorRemoved::decl(),
        latch_core::app::CredentialStored::decl(),
        credential::CredentialCheck::decl(),
        credential::CheckResult::decl(),
        // Sessions, keys, audit, health.
        sign_in::LoginOutcome::decl(),
        credential::LogoutOutcome::decl(),
        credential::Revocation::decl(),
        local_key::KeyPolicy::decl(),
        local_key::LocalKey::decl(),
        audit::AuditEntry::decl(),
        doctor::DoctorReport::decl(),
        doctor::Summary::decl(),
        doctor::ConnectorHealth::decl(),
        doctor::ProbeResult::decl(),
        doctor::ProviderHealth::decl(),
        // The app's own.
        crate::commands::ProviderInput::decl(),
        crate::commands::KeyInput::decl(),
        crate::commands::CreatedKey::decl(),
        crate::commands::AuditInput::decl(),
        crate::commands::Settings::decl(),
        crate::commands::SignInEvent::decl(),
        crate::desktop::ProxyView::decl(),
        crate::ipc_error::IpcError::decl(),
    ];
    let mut out = String::from(
        "// Generated from the Rust types by `make ipc-types` (src-tauri/src/ipc_types.rs); do not \
         edit.\n// `make test` fails when this file no longer matches them.\n\n",
    );
    for declaration in declarations {
        out.push_str("export ");
        out.push_str(&declaration);
        out.push_str("\n\n");
    }
    out.push_str(
        "/** The commands the app registers and grants (src-tauri/src/command_names.rs). */\n",
    );
    out.push_str("export const COMMANDS = [\n");
    for name in COMMANDS {
        out.push_str(&format!("  \"{name}\",\n"));
    }
    out.push_str("] as const;\n\nexport type Command = (typeof COMMANDS)[number];\n");
    out
}

#[test]
fn the_generated_contract_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui/src/ipc/generated.ts");
    let want = generated();
    if std::env::var_os("LATCH_UPDATE_IPC").is_some() {
        std::fs::write(&path, &want).unwrap();
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "ui/src/ipc/generated.ts is stale: run `make ipc-types` and commit it"
    );
}

#[test]
fn main_registers_exactly_the_listed_commands() {
    let main = include_str!("main.rs");
    let start = main.find("generate_handler![").unwrap();
    let end = start + main[start..].find("])").unwrap();
    let registered: BTreeSet<&str> = main[start..end]
        .split("commands::")
        .skip(1)
        .map(|s| {
            s.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .next()
                .unwrap()
        })
        .collect();
    let listed: BTreeSet<&str> = COMMANDS.iter().copied().collect();
    assert_eq!(registered, listed);
}

#[test]
fn the_window_is_granted_exactly_the_listed_commands() {
    let capabilities: serde_json::Value =
        serde_json::from_str(include_str!("../capabilities/default.json")).unwrap();
    let granted: BTreeSet<String> = capabilities["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.as_str()?.strip_prefix("allow-").map(str::to_owned))
        .collect();
    let listed: BTreeSet<String> = COMMANDS.iter().map(|c| c.replace('_', "-")).collect();
    assert_eq!(granted, listed);
}
