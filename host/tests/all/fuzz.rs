//! Fuzzing (weft_testing::fuzz) of the control plane's wire: requests, answers, inventories
//! and events, as a host or `weft ctl` decodes them from a peer.

use std::collections::BTreeMap;
use weft_host::control::{ControlRequest, Done, Event, HostInventory};
use weft_provider_sdk::LinkDefinition;

#[test]
fn fuzz_control_wire() {
    let link = LinkDefinition {
        actor_id: "MACTOR".into(),
        contract_id: "wasmcloud:keyvalue".into(),
        link_name: "default".into(),
        provider_id: "kv".into(),
        values: BTreeMap::from([("url".to_string(), "redis://127.0.0.1".to_string())]),
    };
    let requests = [
        ControlRequest::Inventory,
        ControlRequest::StartActor {
            module: crate::guest(&[]),
            max_instances: Some(4),
        },
        ControlRequest::ScaleActor {
            actor_id: "MACTOR".into(),
            max_instances: 2,
        },
        ControlRequest::StartProvider {
            id: "kv".into(),
            kind: "keyvalue-memory".into(),
            config: BTreeMap::from([("max_keys".to_string(), "10".to_string())]),
            process: false,
        },
        ControlRequest::PutLink(link.clone()),
        ControlRequest::DeleteLink {
            actor_id: "MACTOR".into(),
            contract_id: "wasmcloud:keyvalue".into(),
            link_name: "default".into(),
        },
    ];
    let mut seeds: Vec<Vec<u8>> = requests
        .iter()
        .map(|r| weft_contracts::encode(r).unwrap())
        .collect();
    seeds.push(weft_contracts::encode(&Done::Linked).unwrap());
    let host = weft_host::Host::new(weft_host::HostConfig::default()).unwrap();
    let control = weft_host::control::Control::new(
        host,
        std::sync::Arc::new(crate::control::NoProviders),
        BTreeMap::from([("zone".to_string(), "a".to_string())]),
    );
    seeds.push(weft_contracts::encode(&control.inventory()).unwrap());
    weft_testing::fuzz::run("control-wire", &seeds, |bytes| {
        let read = [
            weft_contracts::decode::<ControlRequest>(bytes).is_ok(),
            weft_contracts::decode::<Done>(bytes).is_ok(),
            weft_contracts::decode::<HostInventory>(bytes).is_ok(),
            weft_contracts::decode::<Event>(bytes).is_ok(),
        ];
        // The outcome is which kinds read the input.
        Err::<(), _>(format!("{read:?}"))
    });
}
