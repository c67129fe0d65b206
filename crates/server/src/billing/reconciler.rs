//! Finishes every pending payment intent by itself: once at start (before the first
//! request) and then every few seconds, asking the processor again under each intent's
//! own key. A client that never comes back, a crash between the charge and its record, a
//! processor that timed out: all end here, with the credits posted exactly once or nothing
//! charged.

use std::time::Duration;

use crate::app::App;
use crate::billing::machine;
use crate::store;

/// How often pending intents are asked about again (api.md: at least every 10 s).
pub const EVERY: Duration = Duration::from_secs(5);

/// Intents looked at per pass; the rest wait for the next pass.
const BATCH: u32 = 500;

/// One pass over the pending intents; returns how many are still pending after it. On a
/// shared ledger only the process holding the reconciler's lease makes passes (another
/// process driving the same intent would be harmless — the processor's key and the
/// conditional completion make it so — but it would ask the processor twice).
pub async fn pass(app: &App) -> usize {
    if app.reconciler_lease.as_ref().is_some_and(|l| !l.is_held()) {
        return 0;
    }
    let pending = match app.read(|c| store::pending_intents(c, BATCH)).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "reconciler: cannot list pending intents");
            return 0;
        }
    };
    let mut left = 0;
    for (account, id) in pending {
        match machine::drive(app, &account, &id).await {
            Ok(row) if row.status == crate::billing::intent::PENDING => left += 1,
            Ok(row) => {
                tracing::info!(intent = %id, %account, status = %row.status, "reconciler: payment intent finished")
            }
            Err(e) => {
                left += 1;
                tracing::warn!(intent = %id, %account, error = %e, "reconciler: cannot finish the payment intent yet");
            }
        }
    }
    left
}

/// Runs a pass every [`EVERY`], forever.
pub async fn run(app: App) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        pass(&app).await;
    }
}

/// Adopts refills that were in flight under the previous version of the server (before
/// payment intents): each gets an intent whose id is the refill's old gateway key, so a
/// charge made before the upgrade is found by the processor instead of made again.
pub async fn adopt_legacy_refills(app: &App) {
    let adopted = app
        .writer
        .run_durable(|ctx| {
            let mut adopted = Vec::new();
            let in_flight: Vec<(String, String, String)> = ctx
                .memory
                .accounts
                .values()
                .filter_map(|r| {
                    let ar = &r.state.auto_refill;
                    let pack = ar.settings.as_ref()?.pack.clone();
                    Some((r.state.id.clone(), ar.in_flight.clone()?, pack))
                })
                .collect();
            for (account, refill_id, pack) in in_flight {
                if store::intent(ctx.tx, &account, &refill_id)?.is_some()
                    || store::intents_of(ctx.tx, &account)?.iter().any(|i| {
                        crate::billing::intent::Detail::of(i)
                            .is_ok_and(|d| d.refill_ref.as_deref() == Some(refill_id.as_str()))
                    })
                {
                    continue;
                }
                let (credits, cents) = ctx
                    .catalog
                    .pack(&pack)
                    .map(|p| (p.credits.micros(), p.price_cents.0))
                    .unwrap_or((0, 0));
                let detail = crate::billing::intent::Detail {
                    refill_ref: Some(refill_id.clone()),
                    ..Default::default()
                };
                let card = store::auto_refill_method(ctx.tx, &account)?;
                let row = crate::billing::intent::pending(
                    &account,
                    refill_id,
                    crate::billing::intent::Source::AutoRefill,
                    Some(pack),
                    credits,
                    cents,
                    card,
                    &detail,
                    ctx.now,
                )?;
                store::insert_intent(ctx.tx, &row)?;
                adopted.push(row.id);
            }
            Ok(adopted)
        })
        .await;
    match adopted {
        Ok(ids) if !ids.is_empty() => {
            tracing::info!(
                count = ids.len(),
                "adopted auto-refills in flight from before payment intents"
            )
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot adopt the refills in flight"),
    }
}
