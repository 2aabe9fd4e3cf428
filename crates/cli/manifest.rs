//! `latch manifest add`.

use std::path::PathBuf;

use clap::Subcommand;

use crate::exit::Failure;
use crate::open_latch;

#[derive(Subcommand)]
pub(crate) enum Cmd {
    /// Check a manifest file and register it in latch.toml.
    Add {
        /// The manifest (TOML with [providers.NAME] / [connectors.NAME] tables).
        file: PathBuf,
    },
}

impl Cmd {
    pub(crate) fn run(self) -> Result<(), Failure> {
        match self {
            Self::Add { file } => {
                let mut latch = open_latch()?;
                let added = latch.add_manifest(&file)?;
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
