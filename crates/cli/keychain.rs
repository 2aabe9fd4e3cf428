//! `latch keychain unlock`: a locked login keyring, unlocked without a desktop prompt.

use clap::Subcommand;

use crate::exit::Failure;
use crate::input::read_secret;
use crate::open_latch;

#[derive(Subcommand)]
pub(crate) enum Cmd {
    /// Unlock the OS keychain with its password (GNOME Keyring's login keyring; read from
    /// stdin, or a prompt without echo).
    #[command(
        after_help = "Example:\n  latch keychain unlock            # asks for the password\n  latch keychain unlock < ~/.keyring-password"
    )]
    Unlock,
}

impl Cmd {
    pub(crate) fn run(self) -> Result<(), Failure> {
        match self {
            Self::Unlock => {
                let latch = open_latch()?;
                let password = read_secret("Keychain password: ")?;
                latch.unlock_keychain(&password)?;
                say!("The keychain is unlocked; every connector can read its credential again.");
                Ok(())
            }
        }
    }
}
