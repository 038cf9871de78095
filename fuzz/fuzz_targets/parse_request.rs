//! Request bodies from the network must never panic the parser, whatever the bytes.
#![no_main]

use floodgate_protocol::{ChatCompletionRequest, CompletionRequest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<ChatCompletionRequest>(data);
    let _ = serde_json::from_slice::<CompletionRequest>(data);
});
