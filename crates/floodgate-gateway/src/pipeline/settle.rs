//! Stage 9, settle and record: the admission reservation is settled to what the
//! request really used, and the request's event (which the store sink turns into its
//! decision record and usage) goes to the event log.
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

use floodgate_eventlog::Ack;

use crate::admission::Permit;
use crate::backend::Generation;
use crate::budget::{Budgets, Hold};
use crate::error::GatewayError;
use crate::events::{Event, RequestEvent, Spine, Trace};
use crate::inference::Finish;
use crate::records::{Price, TierRun};

use super::RequestContext;

pub struct Settlement {
    permit: Permit,
    events: Arc<Spine>,
    /// When the request arrived.
    started: Instant,
    /// Runs paid for but not served (a cascade's discarded answer).
    discarded: Vec<TierRun>,
    serving: Option<Serving>,
    /// The request's event, on its way to the log.
    pending: Option<Ack>,
    /// The key's budget reservation, corrected when settled.
    budget: Option<(Arc<Budgets>, Hold)>,
}

/// The answer being served, and its event until it is emitted.
struct Serving {
    price: Price,
    trace: Arc<Trace>,
    event: Option<RequestEvent>,
    /// When the first token of the served answer came.
    first_token: Option<Instant>,
    /// The served run so far, charged if it never finishes: its prompt (the engine's
    /// count, or an upstream's estimate), the tokens generated, and when it started.
    prompt_tokens: u32,
    generated: u32,
    run_started: Instant,
}

impl Settlement {
    pub fn new(permit: Permit, events: Arc<Spine>, started: Instant) -> Self {
        Self {
            permit,
            events,
            started,
            discarded: Vec::new(),
            serving: None,
            pending: None,
            budget: None,
        }
    }

    /// The budget reservation admission made, to correct at settlement.
    pub fn hold_budget(&mut self, budgets: Arc<Budgets>, hold: Hold) {
        self.budget = Some((budgets, hold));
    }

    /// Settles the admission permit and the budget reservation to `runs`; returns
    /// their total cost.
    fn settle(&mut self, runs: &[TierRun]) -> f64 {
        let cost = settle_permit(&mut self.permit, runs);
        if let Some((budgets, hold)) = self.budget.take() {
            let delta = cost - hold.reserved;
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    if let Err(e) = budgets.adjust(&hold.key, delta).await {
                        tracing::warn!(error = %e, "budget not settled; the reservation stays charged");
                    }
                });
            }
        }
        cost
    }

    /// Runs paid for but not served so far (for a refused request's event).
    pub fn discarded(&self) -> &[TierRun] {
        &self.discarded
    }

    /// Waits (at most `events.ack_timeout_ms`) for the request's event to reach the
    /// log: called before the answer's last byte, so an answered request has its
    /// event even if the process is killed right after.
    pub async fn flush(&mut self) {
        let ack = self.pending.take();
        self.events.settle(ack).await;
    }

    /// Whether the answer's text goes into the event.
    pub fn wants_text(&self) -> bool {
        self.events.include_text() && self.serving.as_ref().is_some_and(|s| s.event.is_some())
    }

    /// More of the answer's text, kept only with `events.include_text`.
    pub fn text(&mut self, text: &str) {
        if !self.events.include_text() {
            return;
        }
        if let Some(e) = self.serving.as_mut().and_then(|s| s.event.as_mut()) {
            e.completion.get_or_insert_with(String::new).push_str(text);
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
            s.first_token.get_or_insert_with(Instant::now);
        }
    }

    /// The served run finished: settle and record. Returns the request's total cost.
    pub fn finished(&mut self, finish: &Finish, guard_notes: &[&str]) -> f64 {
        let Some(serving) = &mut self.serving else {
            return 0.0;
        };
        let Some(mut event) = serving.event.take() else {
            return 0.0;
        };
        let (price, trace, first_token) = (
            serving.price,
            Arc::clone(&serving.trace),
            serving.first_token,
        );
        let served_by = event.served_by.clone().unwrap_or_default();
        event.runs.push(price.run(&served_by, finish, true));
        event.cost_usd = self.settle(&event.runs);
        event
            .guard
            .extend(guard_notes.iter().map(|s| s.to_string()));
        event.usage.prompt_tokens = finish.prompt_tokens;
        event.usage.completion_tokens = finish.completion_tokens;
        event.usage.cached_tokens = finish.cached_prompt_tokens;
        event.timings.queue_ms = finish.queued.as_secs_f64() * 1000.0;
        event.status = 200;
        event.outcome = "completed".into();
        let cost = event.cost_usd;
        self.emit(&trace, event, first_token);
        cost
    }

    /// The request ended without a finished answer (the client left, the generation
    /// failed, the output guard cut it): charge what the served run used until then.
    /// `error` is what the client was told, if anything.
    pub fn ended(&mut self, outcome: String, error: Option<&GatewayError>) {
        let Some(serving) = &mut self.serving else {
            return;
        };
        let Some(mut event) = serving.event.take() else {
            return;
        };
        let (price, trace, first_token) = (
            serving.price,
            Arc::clone(&serving.trace),
            serving.first_token,
        );
        let (prompt_tokens, generated) = (serving.prompt_tokens, serving.generated);
        if generated > 0 {
            let compute_seconds = serving.run_started.elapsed().as_secs_f64();
            event.runs.push(TierRun {
                model: event.served_by.clone().unwrap_or_default(),
                prompt_tokens,
                completion_tokens: generated,
                compute_seconds,
                cost_usd: price.cost(prompt_tokens, generated, compute_seconds),
                served: true,
            });
            self.settle(&event.runs);
        }
        // With nothing generated the admission reservation stays charged.
        event.cost_usd = event.runs.iter().map(|r| r.cost_usd).sum();
        event.usage.prompt_tokens = prompt_tokens;
        event.usage.completion_tokens = generated;
        event.outcome = outcome;
        // A stream has sent its 200 already; a whole answer's error is the status.
        event.status = error.map_or(200, |e| {
            if event.stream {
                200
            } else {
                e.status().as_u16()
            }
        });
        event.error_code = error.map(|e| e.code().to_string());
        self.emit(&trace, event, first_token);
    }

    fn emit(&mut self, trace: &Trace, mut event: RequestEvent, first_token: Option<Instant>) {
        event.timings.total_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        event.timings.time_to_first_token_ms =
            first_token.map(|t| t.duration_since(self.started).as_secs_f64() * 1000.0);
        let event = Event::request(
            trace.id.clone(),
            trace.time_ms,
            self.events.origin.clone(),
            event,
        );
        self.pending = self.events.emit(&event, Some(trace));
    }
}

impl Drop for Settlement {
    fn drop(&mut self) {
        if self.serving.is_some() {
            self.ended("cancelled".into(), None);
        } else {
            // Refused before an answer was handed over: only discarded runs are paid.
            let discarded = std::mem::take(&mut self.discarded);
            self.settle(&discarded);
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
    ctx.trace.claim();
    let tier = &ctx.tiers[ctx.tier];
    let mut event = super::event(ctx, &settlement.events);
    event.served_by = Some(tier.variant.id.clone());
    event.runs = std::mem::take(&mut settlement.discarded);
    settlement.serving = Some(Serving {
        price: tier.price,
        trace: Arc::clone(&ctx.trace),
        event: Some(event),
        first_token: None,
        prompt_tokens: generation.prompt_tokens,
        generated: 0,
        run_started: Instant::now(),
    });
    Ok(settlement)
}
