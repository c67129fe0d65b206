//! What can go wrong in the client engine, in words a person can act on. Secrets never
//! appear in these messages.

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error of api.md.
    #[error("{message} ({code})")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    #[error("cannot reach the server at {url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("the server sent something unexpected for {what}: {detail}")]
    Decode { what: String, detail: String },
    /// A server address that would send the token unencrypted over a network.
    #[error(
        "{url} is not encrypted: http:// is only used to this machine (localhost, 127.0.0.0/8, \
         ::1), because the account token would cross the network in cleartext and anyone on the \
         path could spend your credits. Use https://, or allow unencrypted http on purpose \
         (`creditbar login --allow-insecure-http`, or \"Allow unencrypted http\" in the sign-in \
         window)"
    )]
    Cleartext { url: String },
    /// The server sent more than the client takes (crate::limits); reading stopped.
    #[error(
        "the server at {url} sent {what}, more than this client accepts; it stopped reading and \
         keeps showing what it has cached"
    )]
    TooMuch { url: String, what: String },
    #[error("not signed in: run `creditbar login --server URL` first")]
    NotSignedIn,
    #[error("no saved card: run `creditbar card add` first")]
    NoCard,
    #[error(
        "no OS keychain is available ({detail}). creditbar keeps tokens only in the Secret \
         Service: install and unlock gnome-keyring (or KWallet), e.g. `apt install gnome-keyring` \
         and log into a desktop session; nothing is stored in plain text"
    )]
    KeychainUnavailable { detail: String },
    #[error("keychain error: {0}")]
    Keychain(String),
    #[error("local cache error: {0}")]
    Cache(String),
    #[error("{0}")]
    Invalid(String),
}

impl ClientError {
    /// The server's error code, if the server answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Worth retrying: the request may not have reached the server, or the server was
    /// briefly unable to answer.
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Unreachable { .. } => true,
            ClientError::Api { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

impl From<rusqlite::Error> for ClientError {
    fn from(e: rusqlite::Error) -> Self {
        ClientError::Cache(e.to_string())
    }
}
