//! Money in and out: every charge of a card (a pack, a custom amount, an auto-refill, a
//! plan) and every refund is one payment intent, driven through one state machine.
//!
//! ```text
//!              record (fsynced)          ask the processor, key = intent id
//!   request ──────────────────> pending ─────────────────────────────────┐
//!   ledger effect (refill, plan)   ▲  │                                   │
//!                                  │  │ no answer (timeout, down, crash)  │ answer
//!                                  └──┘ the reconciler asks again,        ▼
//!                                       same key, every 5 s      succeeded ── refund ──> refunded
//!                                                                 (credits posted
//!                                                                  in the same commit)
//!                                                                failed (nothing taken;
//!                                                                  a client key is freed)
//! ```
//!
//! The intent is recorded durably before the card is touched, and the processor is asked
//! with the intent's own random id as its idempotency key, so asking again after any
//! failure returns the first answer instead of charging twice. The outcome and its credits
//! enter the ledger in one fsynced commit, and only from `pending`: whoever completes an
//! intent first wins, the others read the result. Nothing here depends on a client coming
//! back: the [`reconciler`] finishes every pending intent by itself.

pub mod fault;
pub mod intent;
pub mod machine;
pub mod plan;
pub mod purchase;
pub mod reconciler;
pub mod refund;
pub mod report;
