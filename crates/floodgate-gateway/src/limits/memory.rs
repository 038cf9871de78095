//! Buckets in this process's memory: the embedded default. Sharded so that requests of
//! different keys rarely touch the same lock; a call locks its shards in index order, so
//! multi-bucket charges are atomic and cannot deadlock.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use super::{gcra, gcra_adjust, Charge, Limiter, LimiterError, Verdict};

const SHARDS: usize = 32;
/// A shard is swept of expired buckets (TAT in the past = a full bucket) when it grows
/// past this many entries.
const SWEEP_AT: usize = 4096;

pub struct MemoryLimiter {
    epoch: Instant,
    hasher: std::collections::hash_map::RandomState,
    shards: Vec<Mutex<HashMap<String, f64>>>,
}

impl Default for MemoryLimiter {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            hasher: Default::default(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }
}

impl MemoryLimiter {
    fn shard_of(&self, bucket: &str) -> usize {
        (self.hasher.hash_one(bucket) as usize) % SHARDS
    }

    fn now(&self) -> f64 {
        self.epoch.elapsed().as_secs_f64()
    }

    /// Locks the shards `charges` touch, in index order.
    fn lock(&self, charges: &[Charge]) -> (Vec<usize>, Vec<MutexGuard<'_, HashMap<String, f64>>>) {
        let idx: Vec<usize> = charges.iter().map(|c| self.shard_of(&c.bucket)).collect();
        let mut order = idx.clone();
        order.sort_unstable();
        order.dedup();
        let guards = order
            .iter()
            .map(|&i| {
                self.shards[i]
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
            })
            .collect();
        // Map each charge to its guard's position in `guards`.
        let pos = idx
            .iter()
            .map(|i| order.binary_search(i).unwrap_or(0))
            .collect();
        (pos, guards)
    }

    /// Checks and charges in memory; the same contract as [`Limiter::acquire`].
    pub fn acquire_now(&self, charges: &[Charge]) -> Verdict {
        let (pos, mut guards) = self.lock(charges);
        let now = self.now();
        let mut new_tats = Vec::with_capacity(charges.len());
        let mut states = Vec::with_capacity(charges.len());
        for (i, c) in charges.iter().enumerate() {
            let tat = guards[pos[i]].get(&c.bucket).copied().unwrap_or(now);
            // Two charges on one bucket in a call see each other's effect.
            let tat = new_tats
                .iter()
                .zip(charges)
                .rev()
                .find(|(_, other)| other.bucket == c.bucket)
                .map_or(tat, |(t, _)| *t);
            match gcra(tat, now, c.quota, c.amount) {
                Ok((t, s)) => {
                    new_tats.push(t);
                    states.push(s);
                }
                Err(retry_after) => {
                    return Verdict::Limited {
                        index: i,
                        retry_after,
                    }
                }
            }
        }
        for (i, c) in charges.iter().enumerate() {
            let shard = &mut guards[pos[i]];
            if shard.len() >= SWEEP_AT {
                shard.retain(|_, tat| *tat > now);
            }
            shard.insert(c.bucket.clone(), new_tats[i]);
        }
        Verdict::Admitted(states)
    }

    pub fn adjust_now(&self, charges: &[Charge]) {
        let (pos, mut guards) = self.lock(charges);
        let now = self.now();
        for (i, c) in charges.iter().enumerate() {
            let shard = &mut guards[pos[i]];
            let tat = shard.get(&c.bucket).copied().unwrap_or(now);
            shard.insert(c.bucket.clone(), gcra_adjust(tat, now, c.quota, c.amount));
        }
    }
}

#[async_trait::async_trait]
impl Limiter for MemoryLimiter {
    async fn acquire(&self, charges: &[Charge]) -> Result<Verdict, LimiterError> {
        Ok(self.acquire_now(charges))
    }

    async fn adjust(&self, charges: &[Charge]) -> Result<(), LimiterError> {
        self.adjust_now(charges);
        Ok(())
    }

    fn name(&self) -> &'static str {
        "memory"
    }
}

#[cfg(test)]
mod tests {
    use super::super::Quota;
    use super::*;

    fn charge(bucket: &str, per_second: f64, burst: f64, amount: f64) -> Charge {
        Charge {
            bucket: bucket.into(),
            quota: Quota { per_second, burst },
            amount,
        }
    }

    #[test]
    fn a_refused_call_charges_none_of_its_buckets() {
        let l = MemoryLimiter::default();
        // Fill the tenant bucket.
        assert!(matches!(
            l.acquire_now(&[charge("tenant", 0.001, 2.0, 2.0)]),
            Verdict::Admitted(_)
        ));
        let both = [
            charge("key", 0.001, 3.0, 1.0),
            charge("tenant", 0.001, 2.0, 1.0),
        ];
        assert!(matches!(
            l.acquire_now(&both),
            Verdict::Limited { index: 1, .. }
        ));
        // The key bucket was not charged by the refused call: all 3 units remain.
        match l.acquire_now(&[charge("key", 0.001, 3.0, 3.0)]) {
            Verdict::Admitted(s) => assert_eq!(s[0].remaining, 0.0),
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn many_buckets_across_shards_do_not_deadlock_or_mix() {
        let l = std::sync::Arc::new(MemoryLimiter::default());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let l = l.clone();
                std::thread::spawn(move || {
                    let mut admitted = 0;
                    for _ in 0..200 {
                        let cs: Vec<_> = (0..5)
                            .map(|b| charge(&format!("b{}", (b * 7 + t) % 13), 0.0001, 1000.0, 1.0))
                            .collect();
                        if matches!(l.acquire_now(&cs), Verdict::Admitted(_)) {
                            admitted += 1;
                        }
                    }
                    admitted
                })
            })
            .collect();
        let total: i32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(total, 800);
    }
}
