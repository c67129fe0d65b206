//! Committed account snapshots for readers. The writer publishes an account after each
//! commit that touched it; `GET /v1/balance` and `GET /v1/account` answer from here without
//! touching SQLite, and never see an uncommitted charge.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use creditbar_ledger::Account;

pub struct AccountView {
    pub email: String,
    pub state: Account,
}

#[derive(Clone, Default)]
pub struct Views {
    inner: Arc<RwLock<HashMap<String, Arc<AccountView>>>>,
}

impl Views {
    pub fn publish(&self, email: &str, state: &Account) {
        let view = Arc::new(AccountView {
            email: email.to_owned(),
            state: state.clone(),
        });
        let mut map = self.inner.write().unwrap_or_else(|p| p.into_inner());
        map.insert(state.id.clone(), view);
    }

    pub fn get(&self, id: &str) -> Option<Arc<AccountView>> {
        let map = self.inner.read().unwrap_or_else(|p| p.into_inner());
        map.get(id).cloned()
    }
}
