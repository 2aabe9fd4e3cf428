//! Reading secrets: from a prompt without echo when stdin is a terminal, else from stdin.
//! Never from arguments (they show in `ps` and shell history).

use std::io::{IsTerminal, Read};

use latch_core::secret::Secret;

use crate::exit::Failure;

pub(crate) fn read_secret(prompt: &str) -> Result<Secret, Failure> {
    let stdin = std::io::stdin();
    let text = if stdin.is_terminal() {
        rpassword::prompt_password(prompt)
            .map_err(|e| Failure::usage(format!("cannot read the secret from the terminal: {e}")))?
    } else {
        let mut text = String::new();
        stdin
            .lock()
            .read_to_string(&mut text)
            .map_err(|e| Failure::usage(format!("cannot read the secret from stdin: {e}")))?;
        text
    };
    // Here-strings and `echo` add a newline; secrets never end in whitespace.
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(Failure::usage(
            "no secret given: pipe it on stdin (`latch ... <<< \"$SECRET\"`) or type it at the prompt"
                .to_owned(),
        ));
    }
    let secret = Secret::new(trimmed.to_owned());
    zeroize_string(text);
    Ok(secret)
}

fn zeroize_string(text: String) {
    // Dropped through Secret's zeroizing wrapper so the untrimmed copy is wiped too.
    drop(Secret::new(text));
}
