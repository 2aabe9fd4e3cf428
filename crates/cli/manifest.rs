//! `latch manifest add`.

use std::path::PathBuf;

use clap::Subcommand;

use crate::exit::Failure;
use crate::open_latch;

#[derive(Subcommand)]
pub(crate) enum Cmd {
    /// Check a manifest file and register it in latch.toml.
    #[command(after_help = "Example:\n  latch manifest add ./acme.toml")]
    Add {
        /// The manifest (TOML with [providers.NAME] / [connectors.NAME] tables).
        file: PathBuf,
        /// Print `{file, connector_types}` as JSON.
        #[arg(long)]
        json: bool,
    },
}

impl Cmd {
    pub(crate) fn json(&self) -> bool {
        matches!(self, Self::Add { json: true, .. })
    }

    pub(crate) fn run(self) -> Result<(), Failure> {
        match self {
            Self::Add { file, json } => {
                let latch = open_latch()?;
                let added = latch.add_manifest(&file)?;
                if json {
                    return crate::print_json(&serde_json::json!({
                        "file": file.display().to_string(),
                        "connector_types": added,
                    }));
                }
                if added.is_empty() {
                    say!(
                        "Registered {} (it adds no new connector type).",
                        file.display()
                    );
                } else {
                    say!(
                        "Registered {}; new connector types: {}",
                        file.display(),
                        added.join(", ")
                    );
                }
                Ok(())
            }
        }
    }
}
