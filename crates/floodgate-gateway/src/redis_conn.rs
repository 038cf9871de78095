//! One Redis connection shared by a process's callers (the limiter, the budgets), that
//! survives Redis restarts.
//!
//! Callers bound every call by a short timeout (`ratelimit.backend_timeout_ms`), so
//! connecting must not happen inside their calls: a connection attempt cancelled by
//! each caller's timeout would never finish, and every later request would wait the
//! whole timeout for nothing. So connecting runs in a task of its own, which every
//! caller waiting meanwhile shares; a caller that gives up leaves it running. A call
//! that fails or times out drops the connection, and the next caller starts a new
//! attempt (at most one every [`RETRY_EVERY`] while Redis stays down; callers in between
//! are told at once that Redis is unavailable).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::future::{BoxFuture, FutureExt, Shared};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// The least time between two connection attempts while Redis is down.
pub const RETRY_EVERY: Duration = Duration::from_millis(250);

type Connecting = Shared<BoxFuture<'static, Result<ConnectionManager, String>>>;

enum State {
    Down { since: Option<Instant> },
    Connecting(Connecting),
    Up(ConnectionManager),
}

pub struct RedisConn {
    client: redis::Client,
    timeout: Duration,
    state: Mutex<State>,
}

impl RedisConn {
    /// Does not connect yet: a process must start even while Redis is down.
    /// `timeout` bounds each connection attempt and each command.
    pub fn new(client: redis::Client, timeout: Duration) -> Self {
        Self {
            client,
            timeout,
            state: Mutex::new(State::Down { since: None }),
        }
    }

    /// The connection, once it is up (waiting for an attempt in progress, or starting
    /// one); an error says why not.
    pub async fn get(&self) -> Result<ConnectionManager, String> {
        let attempt = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            match &*state {
                State::Up(c) => return Ok(c.clone()),
                State::Connecting(f) => f.clone(),
                State::Down { since: Some(t) } if t.elapsed() < RETRY_EVERY => {
                    return Err("Redis is unreachable (retrying)".into())
                }
                State::Down { .. } => {
                    let config = ConnectionManagerConfig::new()
                        .set_number_of_retries(1)
                        .set_connection_timeout(self.timeout * 4)
                        .set_response_timeout(self.timeout * 4);
                    let client = self.client.clone();
                    let task = tokio::spawn(async move {
                        ConnectionManager::new_with_config(client, config)
                            .await
                            .map_err(|e| e.to_string())
                    });
                    let f: Connecting = async move {
                        match task.await {
                            Ok(r) => r,
                            Err(e) => Err(e.to_string()),
                        }
                    }
                    .boxed()
                    .shared();
                    *state = State::Connecting(f.clone());
                    f
                }
            }
        };
        let result = attempt.await;
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(&*state, State::Connecting(_)) {
            *state = match &result {
                Ok(c) => State::Up(c.clone()),
                Err(_) => State::Down {
                    since: Some(Instant::now()),
                },
            };
        }
        result
    }

    /// A call on the connection failed or timed out: drop it; the next caller connects
    /// again.
    pub fn failed(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(&*state, State::Up(_)) {
            *state = State::Down {
                since: Some(Instant::now()),
            };
        }
    }
}
