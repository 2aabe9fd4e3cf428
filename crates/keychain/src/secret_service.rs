//! What `keyring` does not say about the Secret Service: whether its default collection is
//! locked (a D-Bus property read, no item touched), and unlocking it with its password without
//! a prompt — GNOME Keyring's own interface, what its settings tools use, because starting a
//! second `gnome-keyring-daemon --unlock` leaves the running daemon's collection locked.

use std::time::Duration;

use dbus::arg::{RefArg, Variant};
use dbus::blocking::stdintf::org_freedesktop_dbus::Properties as _;
use dbus::blocking::Connection;
use latch_core::ports::{KeychainState, SecretStoreError};
use latch_core::secret::Secret;

const SERVICE: &str = "org.freedesktop.secrets";
const SERVICE_PATH: &str = "/org/freedesktop/secrets";
const TIMEOUT: Duration = Duration::from_secs(5);

/// The default collection's object path, or `None` when there is none yet (the first item
/// creates it, unlocked).
fn default_collection(connection: &Connection) -> Result<Option<dbus::Path<'static>>, dbus::Error> {
    let service = connection.with_proxy(SERVICE, SERVICE_PATH, TIMEOUT);
    let (path,): (dbus::Path<'static>,) =
        service.method_call("org.freedesktop.Secret.Service", "ReadAlias", ("default",))?;
    Ok((&*path != "/").then_some(path))
}

/// Open, locked or unreachable.
pub(crate) fn state() -> KeychainState {
    let Ok(connection) = Connection::new_session() else {
        return KeychainState::Unreachable;
    };
    let path = match default_collection(&connection) {
        Ok(Some(path)) => path,
        Ok(None) => return KeychainState::Open,
        Err(_) => return KeychainState::Unreachable,
    };
    let collection = connection.with_proxy(SERVICE, path, TIMEOUT);
    match collection.get::<bool>("org.freedesktop.Secret.Collection", "Locked") {
        Ok(true) => KeychainState::Locked,
        Ok(false) => KeychainState::Open,
        Err(_) => KeychainState::Unreachable,
    }
}

/// Unlocks the default collection with its password (GNOME Keyring).
pub(crate) fn unlock(password: &Secret) -> Result<(), SecretStoreError> {
    let unreachable = |err: dbus::Error| super::unavailable(&err.to_string());
    let connection = Connection::new_session().map_err(unreachable)?;
    let path = default_collection(&connection)
        .map_err(unreachable)?
        .unwrap_or_else(|| dbus::Path::from("/org/freedesktop/secrets/collection/login"));
    let service = connection.with_proxy(SERVICE, SERVICE_PATH, TIMEOUT);
    // The password travels in a "plain" session: on the session bus, to the daemon only.
    let (_, session): (Variant<Box<dyn RefArg>>, dbus::Path<'static>) = service
        .method_call(
            "org.freedesktop.Secret.Service",
            "OpenSession",
            ("plain", Variant(String::new())),
        )
        .map_err(unreachable)?;
    let master = (
        session,
        Vec::<u8>::new(),
        password.expose().as_bytes().to_vec(),
        "text/plain; charset=utf8",
    );
    let result: Result<(), dbus::Error> = service.method_call(
        "org.gnome.keyring.InternalUnsupportedGuiltRiddenInterface",
        "UnlockWithMasterPassword",
        (path, master),
    );
    match result {
        Ok(()) if state() == KeychainState::Open => Ok(()),
        Ok(()) => Err(SecretStoreError::Locked {
            reason: "the password did not unlock the login keyring".to_owned(),
            fix: "check the password (the one you log in with, unless you changed the keyring's)"
                .to_owned(),
        }),
        Err(err) if err.name() == Some("org.freedesktop.DBus.Error.UnknownMethod") => {
            Err(SecretStoreError::Locked {
                reason: "this Secret Service is not GNOME Keyring; it unlocks with its own tool"
                    .to_owned(),
                fix: "unlock it in its application (KeePassXC: open the database)".to_owned(),
            })
        }
        Err(err) => Err(SecretStoreError::Locked {
            reason: format!(
                "the login keyring stayed locked ({})",
                err.message().unwrap_or("no reason given")
            ),
            fix: "check the password (the one you log in with, unless you changed the keyring's)"
                .to_owned(),
        }),
    }
}
