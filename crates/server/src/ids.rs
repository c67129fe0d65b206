//! One generator for ids and secrets, seedable so tests can reproduce a run
//! (`CREDITBAR_SEED`); otherwise seeded from the OS.

use std::sync::Mutex;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::secret::{self, Secret};

pub struct IdGen {
    rng: Mutex<StdRng>,
}

impl IdGen {
    pub fn new(seed: Option<u64>) -> Self {
        let rng = match seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_os_rng(),
        };
        IdGen {
            rng: Mutex::new(rng),
        }
    }

    /// A readable random id such as `acc_3f9k2m8x1q7w`.
    pub fn id(&self, prefix: &str) -> String {
        const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        let tail: String = (0..16)
            .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
            .collect();
        format!("{prefix}_{tail}")
    }

    pub fn secret(&self, prefix: &str) -> Secret {
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        secret::generate(prefix, &mut *rng)
    }
}
