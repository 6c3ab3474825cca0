//! The in-memory provider passes the same contract suite as the Redis provider.

use weft_keyvalue_memory::MemoryKeyValue;
use weft_provider_sdk::{LinkDefinition, Provider};

#[tokio::test]
async fn the_whole_contract_answers_as_redis_does() {
    let provider = MemoryKeyValue::new();
    let link = LinkDefinition {
        actor_id: "MACTOR".into(),
        contract_id: weft_contracts::keyvalue::CONTRACT_ID.into(),
        link_name: "default".into(),
        provider_id: "kv".into(),
        values: Default::default(),
    };
    provider.put_link(&link).await.unwrap();
    weft_testing::keyvalue::conformance(&provider, link, "").await;
}
