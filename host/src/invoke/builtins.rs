//! The contracts the host serves itself, with no provider and no link: what every host of the
//! lineage offers its actors.
//!
//! - `wasmcloud:builtin:logging`: a line in the host's log, within the actor's log budget.
//! - `wasmcloud:builtin:numbergen`: GUIDs, random numbers (the operating system's generator,
//!   through `rand`), and each actor's own sequence from 0 (for the older generations'
//!   `RequestSequence`). Operation names are accepted with or without their `NumberGen.`
//!   prefix, as wasmCloud's hosts accept them.
//!
//! An actor still needs the contract in its claims to call either (the claims layer checks).

use super::{HostCall, InvokeError};
use crate::IdMap;
use rand::Rng;
use std::sync::Mutex;
use weft_contracts::{encode, logging, numbergen};

/// Whether the host itself serves `contract`.
pub fn serves(contract: &str) -> bool {
    contract == logging::CONTRACT_ID || contract == numbergen::CONTRACT_ID
}

/// The host's own contracts, with the state they keep.
#[derive(Default)]
pub struct Builtins {
    /// Each actor's next sequence number.
    sequences: Mutex<IdMap<u64>>,
}

impl Builtins {
    /// Serves `call`, whose contract [`serves`] said is the host's own.
    pub fn call(&self, call: &HostCall<'_>) -> Result<Vec<u8>, InvokeError> {
        if call.contract == logging::CONTRACT_ID {
            write_log(call)
        } else {
            self.numbergen(call)
        }
    }

    fn numbergen(&self, call: &HostCall<'_>) -> Result<Vec<u8>, InvokeError> {
        let operation = call.operation;
        let bare = operation.strip_prefix("NumberGen.").unwrap_or(operation);
        let answer = match bare {
            "GenerateGuid" => encode(&uuid::Uuid::new_v4().to_string()),
            "Random32" => encode(&rand::thread_rng().r#gen::<u32>()),
            "RandomInRange" => {
                let limit: numbergen::RangeLimit = weft_contracts::decode(call.payload)
                    .map_err(|e| InvokeError::BadRequest(e.to_string()))?;
                if limit.min > limit.max {
                    return Err(InvokeError::BadRequest(format!(
                        "{}: min {} is over max {}; give min <= max",
                        numbergen::RANDOM_IN_RANGE,
                        limit.min,
                        limit.max
                    )));
                }
                encode(&rand::thread_rng().gen_range(limit.min..=limit.max))
            }
            "NextSequence" => {
                let mut sequences = self.sequences.lock().unwrap_or_else(|e| e.into_inner());
                let next = sequences.entry(call.actor.to_string()).or_insert(0);
                let this = *next;
                *next = next.saturating_add(1);
                encode(&this)
            }
            _ => {
                return Err(InvokeError::BadRequest(format!(
                    "{} has no operation {operation}; it has {}, {}, {} and {}",
                    numbergen::CONTRACT_ID,
                    numbergen::GENERATE_GUID,
                    numbergen::RANDOM_IN_RANGE,
                    numbergen::RANDOM_32,
                    numbergen::NEXT_SEQUENCE
                )));
            }
        };
        answer.map_err(|e| InvokeError::BadRequest(e.to_string()))
    }
}

fn write_log(call: &HostCall<'_>) -> Result<Vec<u8>, InvokeError> {
    if call.operation != logging::WRITE_LOG {
        return Err(InvokeError::BadRequest(format!(
            "{} has no operation {}",
            logging::CONTRACT_ID,
            call.operation
        )));
    }
    let entry: logging::LogEntry =
        weft_contracts::decode(call.payload).map_err(|e| InvokeError::BadRequest(e.to_string()))?;
    let actor = call.actor;
    // Over the actor's log budget the line is dropped (and counted), not refused: the
    // guest's call goes on.
    if !call.log.admit(actor, entry.text.len()) {
        return Ok(Vec::new());
    }
    match entry.level.as_str() {
        "error" => tracing::error!(actor, "{}", entry.text),
        "warn" => tracing::warn!(actor, "{}", entry.text),
        "debug" => tracing::debug!(actor, "{}", entry.text),
        _ => tracing::info!(actor, "{}", entry.text),
    }
    Ok(Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest_log::{CallLog, LogBudget};
    use crate::invoke::Deadline;
    use std::time::Duration;

    fn ask(
        builtins: &Builtins,
        actor: &str,
        operation: &str,
        payload: &[u8],
    ) -> Result<Vec<u8>, InvokeError> {
        let log = CallLog::new(LogBudget::new(1024, 1024));
        builtins.call(&HostCall {
            actor,
            link_name: "default",
            contract: numbergen::CONTRACT_ID,
            operation,
            payload,
            deadline: Deadline::after(Duration::from_secs(1)),
            log: &log,
        })
    }

    fn decode<T: serde::de::DeserializeOwned>(bytes: Result<Vec<u8>, InvokeError>) -> T {
        weft_contracts::decode(&bytes.unwrap()).unwrap()
    }

    #[test]
    fn numbergen_answers_guids_ranges_and_sequences_per_actor() {
        let builtins = Builtins::default();
        let guid: String = decode(ask(&builtins, "a", numbergen::GENERATE_GUID, &[]));
        let parsed = uuid::Uuid::parse_str(&guid).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
        let other: String = decode(ask(&builtins, "a", "GenerateGuid", &[]));
        assert_ne!(guid, other);

        let range = encode(&numbergen::RangeLimit { min: 3, max: 5 }).unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let n: u32 = decode(ask(&builtins, "a", numbergen::RANDOM_IN_RANGE, &range));
            seen.insert(n);
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), [3, 4, 5]);

        for expected in 0..3u64 {
            let n: u64 = decode(ask(&builtins, "a", numbergen::NEXT_SEQUENCE, &[]));
            assert_eq!(n, expected);
        }
        let b: u64 = decode(ask(&builtins, "b", numbergen::NEXT_SEQUENCE, &[]));
        assert_eq!(b, 0, "each actor has its own sequence");
    }

    #[test]
    fn an_empty_range_or_an_unknown_operation_is_a_bad_request_naming_the_fix() {
        let builtins = Builtins::default();
        let range = encode(&numbergen::RangeLimit { min: 9, max: 2 }).unwrap();
        let err = ask(&builtins, "a", numbergen::RANDOM_IN_RANGE, &range).unwrap_err();
        assert!(
            err.to_string()
                .contains("min 9 is over max 2; give min <= max"),
            "{err}"
        );
        let err = ask(&builtins, "a", "NumberGen.Flip", &[]).unwrap_err();
        assert!(
            err.to_string().contains("has no operation NumberGen.Flip"),
            "{err}"
        );
    }
}
