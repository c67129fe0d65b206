//! Secrets in the OS keychain: the account token and the payment token, one item each,
//! updated in place and removed on logout. There is no plaintext fallback: without a
//! keychain the engine says what to install or unlock.

use std::collections::HashMap;
use std::sync::Mutex;

use secrecy::{ExposeSecret, SecretString};

use crate::error::ClientError;

/// The service name under which creditbar's items live (the `service` attribute that
/// `secret-tool lookup service creditbar username account-token` finds).
pub const SERVICE: &str = "creditbar";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Item {
    AccountToken,
    PaymentToken,
}

impl Item {
    pub fn name(self) -> &'static str {
        match self {
            Item::AccountToken => "account-token",
            Item::PaymentToken => "payment-token",
        }
    }
}

pub trait SecretStore: Send + Sync {
    fn get(&self, item: Item) -> Result<Option<SecretString>, ClientError>;
    fn set(&self, item: Item, value: &SecretString) -> Result<(), ClientError>;
    fn delete(&self, item: Item) -> Result<(), ClientError>;
}

/// The OS keychain (Secret Service on Linux, Keychain on macOS, Credential Manager on
/// Windows) through the keyring crate.
pub struct Keychain;

fn keychain_error(e: keyring::Error) -> ClientError {
    match e {
        keyring::Error::NoDefaultStore
        | keyring::Error::NoStorageAccess(_)
        | keyring::Error::PlatformFailure(_) => ClientError::KeychainUnavailable {
            detail: e.to_string(),
        },
        other => ClientError::Keychain(other.to_string()),
    }
}

impl Keychain {
    fn entry(item: Item) -> Result<keyring::Entry, ClientError> {
        if let Err(e) = keyring::Entry::store_status() {
            return Err(ClientError::KeychainUnavailable {
                detail: e.to_string(),
            });
        }
        keyring::Entry::new(SERVICE, item.name()).map_err(keychain_error)
    }
}

impl SecretStore for Keychain {
    fn get(&self, item: Item) -> Result<Option<SecretString>, ClientError> {
        match Self::entry(item)?.get_password() {
            Ok(p) => Ok(Some(SecretString::from(p))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(keychain_error(e)),
        }
    }

    fn set(&self, item: Item, value: &SecretString) -> Result<(), ClientError> {
        Self::entry(item)?
            .set_password(value.expose_secret())
            .map_err(keychain_error)
    }

    fn delete(&self, item: Item) -> Result<(), ClientError> {
        match Self::entry(item)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(keychain_error(e)),
        }
    }
}

impl<T: SecretStore + ?Sized> SecretStore for std::sync::Arc<T> {
    fn get(&self, item: Item) -> Result<Option<SecretString>, ClientError> {
        (**self).get(item)
    }
    fn set(&self, item: Item, value: &SecretString) -> Result<(), ClientError> {
        (**self).set(item, value)
    }
    fn delete(&self, item: Item) -> Result<(), ClientError> {
        (**self).delete(item)
    }
}

/// In-memory store: for unit tests, and for the desktop app's `--demo`, whose throwaway
/// token for a throwaway server must not land in the user's real keychain.
#[derive(Default)]
pub struct MemoryStore {
    items: Mutex<HashMap<Item, SecretString>>,
}

impl SecretStore for MemoryStore {
    fn get(&self, item: Item) -> Result<Option<SecretString>, ClientError> {
        Ok(self
            .items
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&item)
            .cloned())
    }

    fn set(&self, item: Item, value: &SecretString) -> Result<(), ClientError> {
        self.items
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(item, value.clone());
        Ok(())
    }

    fn delete(&self, item: Item) -> Result<(), ClientError> {
        self.items
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&item);
        Ok(())
    }
}
