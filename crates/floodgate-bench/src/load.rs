//! Driving one concurrency level.
//!
//! Closed loop: `concurrency` workers each send a request, wait for its stream to end and send
//! the next, until `requests` have been sent. So exactly `concurrency` requests are in flight
//! until the last few drain. The level's wall time runs from the first send to the end of the
//! last stream.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::prompts::Prompt;
use crate::request::{Sample, Target};

/// The samples of one level, in request order, and its wall time.
#[derive(Debug)]
pub struct LevelRun {
    pub concurrency: usize,
    pub samples: Vec<Sample>,
    pub wall_s: f64,
}

pub async fn run_level(
    target: &Arc<Target>,
    prompts: &Arc<Vec<Prompt>>,
    concurrency: usize,
    requests: usize,
) -> LevelRun {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..concurrency.min(requests))
        .map(|_| {
            let (target, prompts, next) = (target.clone(), prompts.clone(), next.clone());
            tokio::spawn(async move {
                let mut done = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= requests {
                        return done;
                    }
                    let sample = target.send(&prompts[i % prompts.len()]).await;
                    done.push((i, sample));
                }
            })
        })
        .collect();
    let mut indexed = Vec::with_capacity(requests);
    for joined in futures::future::join_all(workers).await {
        match joined {
            Ok(done) => indexed.extend(done),
            // A worker cannot panic short of a bug; its requests simply go missing.
            Err(e) => eprintln!("warning: a benchmark worker failed: {e}"),
        }
    }
    let wall_s = start.elapsed().as_secs_f64();
    indexed.sort_by_key(|(i, _)| *i);
    LevelRun {
        concurrency,
        samples: indexed.into_iter().map(|(_, s)| s).collect(),
        wall_s,
    }
}
