//! Stage 9, settle and record: the admission reservation is settled to what the
//! request really used, and its decision record and usage are written.
//!
//! A [`Settlement`] owns the admission permit from the moment the request is admitted,
//! so nothing is settled by hand at each return:
//! - dropped before any answer was handed over (a guard refused, a backend refused):
//!   the reservation is settled to the runs already paid for (a discarded cascade
//!   answer), so a refused request costs nothing else;
//! - finished: settled to every run, the record written with status `completed`;
//! - dropped while serving (the client left, the generation failed, the output guard
//!   cut it): what the served run had used is charged, so hanging up just before the
//!   end does not make an answer free; with nothing generated yet the reservation
//!   stays charged.

use std::sync::Arc;
use std::time::Instant;

use crate::admission::Permit;
use crate::backend::Generation;
use crate::error::GatewayError;
use crate::inference::Finish;
use crate::records::{DecisionRecord, Price, RecordStore, TierRun};

use super::RequestContext;

pub struct Settlement {
    permit: Permit,
    records: Arc<dyn RecordStore>,
    /// When the request arrived.
    started: Instant,
    /// Runs paid for but not served (a cascade's discarded answer).
    discarded: Vec<TierRun>,
    serving: Option<Serving>,
}

/// The answer being served, and its record until it is written.
struct Serving {
    price: Price,
    record: Option<DecisionRecord>,
    /// The served run so far, charged if it never finishes: its prompt (the engine's
    /// count, or an upstream's estimate), the tokens generated, and when it started.
    prompt_tokens: u32,
    generated: u32,
    run_started: Instant,
}

impl Settlement {
    pub fn new(permit: Permit, records: Arc<dyn RecordStore>, started: Instant) -> Self {
        Self {
            permit,
            records,
            started,
            discarded: Vec::new(),
            serving: None,
        }
    }

    /// A run whose answer was thrown away; it is paid for whatever happens next.
    pub fn discard(&mut self, run: TierRun) {
        self.discarded.push(run);
    }

    /// One more token of the served answer was generated.
    pub fn token(&mut self) {
        if let Some(s) = &mut self.serving {
            s.generated = s.generated.saturating_add(1);
        }
    }

    /// The served run finished: settle and record. Returns the request's total cost.
    pub fn finished(&mut self, finish: &Finish, guard_notes: &[&str]) -> f64 {
        let Some(serving) = &mut self.serving else {
            return 0.0;
        };
        let Some(mut record) = serving.record.take() else {
            return 0.0;
        };
        let price = serving.price;
        record.runs.push(price.run(&record.served_by, finish, true));
        record.cost_usd = settle_permit(&mut self.permit, &record.runs);
        record
            .guard
            .extend(guard_notes.iter().map(|s| s.to_string()));
        record.status = "completed".into();
        record.latency_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        let cost = record.cost_usd;
        crate::records::write(&self.records, record);
        cost
    }

    /// The request ended without a finished answer (the client left, the generation
    /// failed, the output guard cut it): charge what the served run used until then.
    pub fn ended(&mut self, status: String) {
        let Some(serving) = &mut self.serving else {
            return;
        };
        let Some(mut record) = serving.record.take() else {
            return;
        };
        if serving.generated > 0 {
            let compute_seconds = serving.run_started.elapsed().as_secs_f64();
            record.runs.push(TierRun {
                model: record.served_by.clone(),
                prompt_tokens: serving.prompt_tokens,
                completion_tokens: serving.generated,
                compute_seconds,
                cost_usd: serving.price.cost(
                    serving.prompt_tokens,
                    serving.generated,
                    compute_seconds,
                ),
                served: true,
            });
            settle_permit(&mut self.permit, &record.runs);
        }
        // With nothing generated the admission reservation stays charged.
        record.cost_usd = record.runs.iter().map(|r| r.cost_usd).sum();
        record.status = status;
        if tokio::runtime::Handle::try_current().is_ok() {
            crate::records::write(&self.records, record);
        }
    }
}

impl Drop for Settlement {
    fn drop(&mut self) {
        if self.serving.is_some() {
            self.ended("cancelled".into());
        } else {
            // Refused before an answer was handed over: only discarded runs are paid.
            settle_permit(&mut self.permit, &self.discarded);
        }
    }
}

/// Settles the admission permit to `runs`; returns their total cost.
fn settle_permit(permit: &mut Permit, runs: &[TierRun]) -> f64 {
    let cost = runs.iter().map(|r| r.cost_usd).sum();
    let tokens = runs
        .iter()
        .map(|r| r.prompt_tokens.saturating_add(r.completion_tokens))
        .fold(0u32, u32::saturating_add);
    permit.used(tokens, cost);
    cost
}

/// The hand-over: the answer of `ctx.tier` is what the client gets. Takes the
/// settlement out of the context, with the request's decision record.
pub fn serve(
    ctx: &mut RequestContext,
    generation: &Generation,
) -> Result<Settlement, GatewayError> {
    let mut settlement = ctx
        .settlement
        .take()
        .ok_or_else(|| GatewayError::Internal("request not admitted".into()))?;
    let tier = &ctx.tiers[ctx.tier];
    let record = DecisionRecord {
        // `records::write` gives the record a fresh event id.
        event_id: String::new(),
        request_id: ctx
            .request_id
            .as_ref()
            .map(|r| r.0.clone())
            .unwrap_or_default(),
        key_id: ctx.caller.key_id().to_string(),
        tenant: ctx.caller.tenant().to_string(),
        created_at: crate::clock::unix_secs(),
        requested: ctx.request.model.clone(),
        served_by: tier.variant.id.clone(),
        route: ctx.decision.clone(),
        runs: std::mem::take(&mut settlement.discarded),
        cost_usd: 0.0,
        guard: ctx.guard_notes.iter().map(|s| s.to_string()).collect(),
        status: String::new(),
        latency_ms: 0.0,
    };
    settlement.serving = Some(Serving {
        price: tier.price,
        record: Some(record),
        prompt_tokens: generation.prompt_tokens,
        generated: 0,
        run_started: Instant::now(),
    });
    Ok(settlement)
}
