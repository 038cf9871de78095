//! The continuous-batching scheduler's behaviour, on a tiny random-weight model:
//! sequences join and leave the batch, the KV budget is respected, long prompts are
//! prefilled in chunks, cancellation frees KV at once, priorities order admission,
//! shared prefixes are reused without changing the output, and an idle engine gathers a
//! burst into its first batch.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use floodgate_engine::{
    Engine, EngineConfig, EngineError, Event, Finish, GenerateRequest, Priority, SamplingParams,
    TokenId,
};
use floodgate_test_support::tiny_llama::{write_tiny_llama, TinyModelOptions};
use tokio::sync::mpsc::UnboundedReceiver;

fn model() -> PathBuf {
    static PATH: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny.gguf");
        write_tiny_llama(
            &path,
            &TinyModelOptions {
                context_length: 8192,
                ..TinyModelOptions::default()
            },
        )
        .unwrap();
        (dir, path)
    })
    .1
    .clone()
}

fn engine(tweak: impl FnOnce(&mut EngineConfig)) -> Engine {
    let mut c = EngineConfig::new("tiny", model());
    c.kv_cache_tokens = 4096;
    c.max_batch_size = 4;
    // One thread: the tiny model gains nothing from more, and OpenMP spin-waits badly
    // when tests share the cores.
    c.threads = Some(1);
    tweak(&mut c);
    Engine::load(c).unwrap()
}

/// A prompt of `n` ordinary tokens, varied by `salt`.
fn prompt(n: usize, salt: i32) -> Vec<TokenId> {
    (0..n as i32)
        .map(|i| 300 + (i * 7 + salt * 13) % 600)
        .collect()
}

fn req(prompt: Vec<TokenId>, max_tokens: u32) -> GenerateRequest {
    GenerateRequest {
        prompt,
        max_tokens,
        sampling: SamplingParams {
            temperature: 0.0,
            ..SamplingParams::default()
        },
        stop: vec![],
        logprobs: None,
        ignore_eos: true,
        priority: Priority::Interactive,
        deadline: None,
    }
}

/// Drains one generation: (text, finish).
fn finish(mut rx: UnboundedReceiver<Event>) -> (String, Finish) {
    let mut text = String::new();
    loop {
        match rx.blocking_recv() {
            Some(Event::Token(t)) => text.push_str(&t.text),
            Some(Event::Finished(f)) => return (text, f),
            Some(Event::Failed(e)) => panic!("generation failed: {e}"),
            None => panic!("engine hung up"),
        }
    }
}

#[derive(Debug, PartialEq)]
enum Seen {
    Token(usize),
    Done(usize),
}

/// Polls several generations, recording the order in which events arrive.
fn interleave(mut rxs: Vec<UnboundedReceiver<Event>>) -> (Vec<Seen>, Vec<Finish>) {
    let mut log = Vec::new();
    let mut done: Vec<Option<Finish>> = rxs.iter().map(|_| None).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while done.iter().any(Option::is_none) {
        assert!(Instant::now() < deadline, "generations did not finish");
        for (i, rx) in rxs.iter_mut().enumerate() {
            while let Ok(ev) = rx.try_recv() {
                match ev {
                    Event::Token(_) => log.push(Seen::Token(i)),
                    Event::Finished(f) => {
                        log.push(Seen::Done(i));
                        done[i] = Some(f);
                    }
                    Event::Failed(e) => panic!("{i} failed: {e}"),
                }
            }
        }
        std::thread::yield_now();
    }
    (log, done.into_iter().map(Option::unwrap).collect())
}

fn position(log: &[Seen], what: Seen) -> usize {
    log.iter().position(|s| *s == what).unwrap()
}

#[test]
fn sequences_join_and_leave_the_batch() {
    let e = engine(|c| c.max_batch_size = 2);
    let a = e.generate(req(prompt(8, 1), 400)).unwrap();
    let b = e.generate(req(prompt(8, 2), 10)).unwrap();
    let c = e.generate(req(prompt(8, 3), 10)).unwrap();
    let (_, fin) = interleave(vec![a, b, c]);
    assert_eq!(
        fin.iter().map(|f| f.completion_tokens).collect::<Vec<_>>(),
        vec![400, 10, 10]
    );
    let (a, b, c) = (&fin[0], &fin[1], &fin[2]);
    // C waited for a slot and joined when B left ...
    assert!(c.admitted >= b.finished, "{fin:?}");
    // ... and ran alongside A, which was still decoding, then left before it.
    assert!(
        c.admitted > a.admitted && c.finished < a.finished,
        "{fin:?}"
    );
}

#[test]
fn requests_beyond_the_context_are_refused_and_the_kv_budget_queues_the_rest() {
    let e = engine(|c| {
        c.kv_cache_tokens = 256;
        c.context_length = Some(256);
    });
    let err = e.generate(req(prompt(16, 1), 300)).unwrap_err();
    assert!(
        matches!(err, EngineError::ContextLengthExceeded { limit: 256, .. }),
        "{err}"
    );
    // Each needs 16 + 200 of the 256 KV cells: the second must wait for the first.
    let first = e.generate(req(prompt(16, 1), 200)).unwrap();
    let second = e.generate(req(prompt(16, 2), 200)).unwrap();
    let (_, fin) = interleave(vec![first, second]);
    assert!(fin[1].admitted >= fin[0].finished, "{fin:?}");
    assert_eq!(fin[1].completion_tokens, 200);
}

#[test]
fn a_long_prompt_is_prefilled_in_chunks_between_decode_steps() {
    let e = engine(|c| {
        c.max_prefill_tokens_per_step = 16;
        c.max_batch_tokens = 512;
    });
    let mut running = e.generate(req(prompt(8, 1), 3000)).unwrap();
    // Make sure the stream is decoding before the long prompt arrives.
    assert!(matches!(running.blocking_recv(), Some(Event::Token(_))));
    let long = e.generate(req(prompt(1200, 2), 4)).unwrap();
    let (log, fin) = interleave(vec![running, long]);
    let first_long = position(&log, Seen::Token(1));
    let decoded_meanwhile = log[..first_long]
        .iter()
        .filter(|s| **s == Seen::Token(0))
        .count();
    // 1200 prompt tokens at 16 per step is 75 steps, each with a decode token for the stream.
    assert!(
        decoded_meanwhile >= 60,
        "the running stream stalled: {decoded_meanwhile} tokens"
    );
    assert_eq!(fin[1].completion_tokens, 4);
}

#[test]
fn a_short_prompt_is_prefilled_whole_while_streams_decode() {
    // With one stream decoding, prompts are chunked at 16 tokens a step; "short" prompts
    // (here up to 2000 tokens) are taken whole.
    let e = engine(|c| {
        c.short_prompt_tokens = 2000;
        c.max_prefill_tokens_per_step = 2048;
        c.max_batch_tokens = 2100;
    });
    let decoded_before_first_token = |prompt_len: usize, salt: i32| {
        let mut running = e.generate(req(prompt(8, salt), 1000)).unwrap();
        assert!(matches!(running.blocking_recv(), Some(Event::Token(_))));
        // Count only the stream's tokens from here on: drop what it generated already.
        while let Ok(ev) = running.try_recv() {
            assert!(matches!(ev, Event::Token(_)), "{ev:?}");
        }
        let newcomer = e.generate(req(prompt(prompt_len, salt + 1), 2)).unwrap();
        let (log, _) = interleave(vec![running, newcomer]);
        let first = position(&log, Seen::Token(1));
        log[..first]
            .iter()
            .filter(|s| **s == Seen::Token(0))
            .count()
    };
    // 2001 tokens: 126 chunks, each step with a decode token for the stream. 2000: one
    // step, plus whatever the stream decodes while the newcomer is queued or this thread is
    // descheduled; that noise only adds, so the best of three tries counts.
    let long = decoded_before_first_token(2001, 20);
    let short = [10, 12, 14]
        .into_iter()
        .map(|salt| decoded_before_first_token(2000, salt))
        .min()
        .unwrap_or(usize::MAX);
    assert!(
        long >= 100,
        "the longer prompt was not chunked: {long} tokens meanwhile"
    );
    assert!(
        short * 3 <= long,
        "the short prompt was chunked: {short} tokens meanwhile, against {long}"
    );
}

#[test]
fn cancelling_frees_the_kv_budget_at_once() {
    let e = engine(|c| c.kv_cache_tokens = 2048);
    // Alone, a 2000-token generation takes this long:
    let started = Instant::now();
    finish(e.generate(req(prompt(16, 1), 2000)).unwrap());
    let full = started.elapsed();
    // Now the same request holds (almost) the whole KV budget while another waits.
    let mut hog = e.generate(req(prompt(16, 2), 2000)).unwrap();
    assert!(matches!(hog.blocking_recv(), Some(Event::Token(_))));
    let waiting = e.generate(req(prompt(16, 3), 1000)).unwrap();
    drop(hog);
    let (_, f) = finish(waiting);
    assert_eq!(f.completion_tokens, 1000);
    assert!(
        f.queued < full / 4,
        "waited {:?}; a full generation takes {full:?}",
        f.queued
    );
}

#[test]
fn interactive_requests_are_admitted_before_batch_ones() {
    let e = engine(|c| c.max_batch_size = 1);
    // Long enough that both later requests are queued before it ends, even on a busy machine.
    let mut busy = e.generate(req(prompt(8, 1), 2000)).unwrap();
    assert!(matches!(busy.blocking_recv(), Some(Event::Token(_))));
    let mut batch = req(prompt(8, 2), 5);
    batch.priority = Priority::Batch;
    let batch = e.generate(batch).unwrap();
    let interactive = e.generate(req(prompt(8, 3), 5)).unwrap();
    assert_eq!(e.queue_depth(), 2);
    let (_, fin) = interleave(vec![busy, batch, interactive]);
    // Submitted second, admitted first.
    assert!(fin[2].admitted < fin[1].admitted, "{fin:?}");
    assert!(fin[1].admitted >= fin[2].finished, "{fin:?}");
}

#[test]
fn a_shared_prefix_is_reused_and_does_not_change_the_answer() {
    let shared = prompt(300, 9);
    let with_suffix = |s: i32| [shared.clone(), prompt(10, s)].concat();
    let cached = engine(|_| {});
    let (_, first) = finish(cached.generate(req(with_suffix(1), 4)).unwrap());
    assert_eq!(first.cached_prompt_tokens, 0);
    let (text, second) = finish(cached.generate(req(with_suffix(2), 24)).unwrap());
    assert!(second.cached_prompt_tokens >= 300, "{second:?}");

    // Sharing with a request that is still running.
    let mut running = cached.generate(req(with_suffix(3), 2000)).unwrap();
    assert!(matches!(running.blocking_recv(), Some(Event::Token(_))));
    let (text_shared, concurrent) = finish(cached.generate(req(with_suffix(2), 24)).unwrap());
    assert!(concurrent.cached_prompt_tokens >= 300, "{concurrent:?}");
    drop(running);

    let fresh = engine(|c| c.prefix_cache = false);
    let (expected, f) = finish(fresh.generate(req(with_suffix(2), 24)).unwrap());
    assert_eq!(f.cached_prompt_tokens, 0);
    assert_eq!(
        text, expected,
        "reusing the prefix changed the greedy output"
    );
    assert_eq!(text_shared, expected);
}

#[test]
fn deadlines_end_generation_and_free_the_sequence() {
    let e = engine(|c| c.request_timeout = Some(Duration::from_millis(50)));
    let mut rx = e.generate(req(prompt(8, 1), 4000)).unwrap();
    let mut tokens = 0;
    let failure = loop {
        match rx.blocking_recv() {
            Some(Event::Token(_)) => tokens += 1,
            Some(Event::Failed(e)) => break e,
            other => panic!("expected a timeout, got {other:?}"),
        }
    };
    assert_eq!(failure, EngineError::Timeout);
    assert!(tokens < 4000, "the timeout did not stop generation");
    // The engine is free again.
    let (_, f) = finish(e.generate(req(prompt(8, 2), 5)).unwrap());
    assert_eq!(f.completion_tokens, 5);
}

#[test]
fn per_sequence_kv_streams_give_the_same_answers() {
    // Prompts short and long (chunked while others decode), joining at different times.
    let prompts = [prompt(12, 1), prompt(300, 2), prompt(40, 3), prompt(700, 4)];
    let run = |e: &Engine| {
        let rxs: Vec<_> = prompts
            .iter()
            .map(|p| e.generate(req(p.clone(), 24)).unwrap())
            .collect();
        rxs.into_iter().map(|rx| finish(rx).0).collect::<Vec<_>>()
    };
    let unified = run(&engine(|_| {}));
    let streams = engine(|c| c.kv_unified = false);
    assert_eq!(run(&streams), unified);
    // A slot's own cached prompt is still reused.
    let mut longer = prompts[3].clone();
    longer.extend(prompt(5, 9));
    let (_, f) = finish(streams.generate(req(longer, 4)).unwrap());
    assert!(f.cached_prompt_tokens >= 600, "{f:?}");
    // A sequence's stream is its share of the cache (4096 / 4): a request that would
    // overflow it is refused up front, not failed mid-decode.
    match streams.generate(req(prompt(1000, 5), 100)) {
        Err(EngineError::ContextLengthExceeded { limit, .. }) => assert_eq!(limit, 1024),
        other => panic!("expected a context-length refusal, got {other:?}"),
    }
}

#[test]
fn an_idle_engine_gathers_a_burst_into_its_first_batch() {
    let e = engine(|c| {
        c.burst_wait_ms = 10_000;
        c.burst_gap_ms = 0;
    });
    // Nothing announced and no gap: a lone request starts at once.
    let (_, lone) = finish(e.generate(req(prompt(8, 40), 2)).unwrap());
    assert!(
        lone.queued < Duration::from_secs(2),
        "a lone request waited {:?}",
        lone.queued
    );
    // One request is in while another is still announced (its caller is screening it)
    // and is handed over 300 ms later: the first waits, and both are admitted in the
    // same step. (The gateway withdraws an announcement just before the hand-over, which
    // the engine's short grace covers; here it goes just after, so that descheduling
    // this thread cannot split the burst.)
    let announced = e.expect_request();
    let first = e.generate(req(prompt(8, 41), 4)).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let second = e.generate(req(prompt(8, 42), 4)).unwrap();
    drop(announced);
    let (_, f1) = finish(first);
    let (_, f2) = finish(second);
    assert!(
        f1.queued >= Duration::from_millis(250),
        "the first request did not wait for the announced one: {:?}",
        f1.queued
    );
    assert_admitted_together(&f1, &f2);

    // An announcement that never arrives holds the first request only up to the cap.
    let e = engine(|c| {
        c.burst_wait_ms = 400;
        c.burst_gap_ms = 0;
    });
    let never = e.expect_request();
    let (_, f) = finish(e.generate(req(prompt(8, 43), 2)).unwrap());
    drop(never);
    assert!(
        f.queued >= Duration::from_millis(350) && f.queued < Duration::from_secs(5),
        "waited {:?} for an announcement capped at 400 ms",
        f.queued
    );

    // Unannounced arrivals: each keeps the batch open for the gap, so a second request
    // 100 ms after the first joins it; a lone request waits the gap once.
    let e = engine(|c| {
        c.burst_wait_ms = 10_000;
        c.burst_gap_ms = 300;
    });
    let first = e.generate(req(prompt(8, 44), 4)).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let second = e.generate(req(prompt(8, 45), 4)).unwrap();
    let (_, f1) = finish(first);
    let (_, f2) = finish(second);
    assert!(f1.queued >= Duration::from_millis(80), "{:?}", f1.queued);
    assert_admitted_together(&f1, &f2);
    let (_, lone) = finish(e.generate(req(prompt(8, 46), 2)).unwrap());
    assert!(
        lone.queued >= Duration::from_millis(250) && lone.queued < Duration::from_secs(5),
        "a lone request waited {:?} with a 300 ms gap",
        lone.queued
    );
}

fn assert_admitted_together(a: &Finish, b: &Finish) {
    let apart = a.admitted.max(b.admitted) - a.admitted.min(b.admitted);
    assert!(
        apart < Duration::from_millis(100),
        "admitted {apart:?} apart"
    );
}
