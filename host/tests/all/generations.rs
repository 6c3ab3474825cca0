//! Actors of the older ABI generations on a lattice (#17): built from their own SDK crates
//! (`actors/legacy`), run by one host, called by another that runs neither, reaching a Redis
//! provider that serves on the lattice; their calls and answers are translated by the host
//! that runs them, so the provider and the calling host see only wasmbus.

use crate::lattice::{counter_request, member, redis_link, redis_provider};
use weft_contracts::httpserver::{HANDLE_REQUEST, HttpResponse};
use weft_provider_sdk::LinkDefinition;
use weft_testing::{NatsServer, RedisServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_generations_serve_across_a_lattice() {
    let nats = NatsServer::start().unwrap();
    let redis = RedisServer::start().unwrap();
    let _provider = redis_provider(&nats).await;
    let (runs, calls) = (member(&nats).await, member(&nats).await);
    let mut actors = Vec::new();
    for (name, contract) in [
        ("wascc-kvcounter", "wascc:keyvalue"),
        ("wasmcloud-kvcounter", "wasmcloud:keyvalue"),
    ] {
        let bytes = std::fs::read(crate::signed_actor(name)).unwrap();
        let id = runs.start_actor(&bytes).await.unwrap().id;
        runs.put_link(LinkDefinition {
            contract_id: contract.into(),
            ..redis_link(&id, &redis)
        })
        .await
        .unwrap();
        actors.push((name, id));
    }
    // Both add to one counter in Redis, called from the host that runs neither.
    let mut expected = 0;
    for round in 0..3 {
        for (name, actor) in &actors {
            expected += 1;
            let answer = calls
                .invoke(actor, HANDLE_REQUEST, &counter_request())
                .await
                .unwrap();
            let response: HttpResponse = weft_contracts::decode(&answer).unwrap();
            let body = String::from_utf8_lossy(&response.body).into_owned();
            assert_eq!(response.status_code, 200, "{name}, round {round}: {body}");
            let json: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(json["counter"], expected, "{name}, round {round}: {body}");
        }
    }
}
