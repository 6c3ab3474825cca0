//! The store's quota: keys and bytes, each obeyed and enforced, and refused writes lose
//! nothing already stored.

use weft_contracts::keyvalue as kv;
use weft_contracts::{decode, encode};
use weft_keyvalue_memory::{MemoryKeyValue, Quota};

fn set(store: &MemoryKeyValue, key: &str, value: &str) -> Result<(), String> {
    let request = kv::SetRequest {
        key: key.into(),
        value: value.into(),
        expires: 0,
    };
    store
        .apply(kv::SET, &encode(&request).unwrap())
        .map(drop)
        .map_err(|e| e.to_string())
}

fn get(store: &MemoryKeyValue, key: &str) -> Option<String> {
    let reply = store.apply(kv::GET, &encode(key).unwrap()).unwrap();
    let got: kv::GetResponse = decode(&reply).unwrap();
    got.exists.then_some(got.value)
}

fn del(store: &MemoryKeyValue, key: &str) {
    store.apply(kv::DEL, &encode(key).unwrap()).unwrap();
}

#[test]
fn max_keys_obeyed_and_enforced() {
    let store = MemoryKeyValue::with_quota(Quota {
        max_keys: 3,
        ..Quota::default()
    });
    for key in ["a", "b", "c"] {
        set(&store, key, "1").unwrap();
    }
    let refused = set(&store, "d", "1").unwrap_err();
    assert!(
        refused.contains("store is full (it holds 3 keys, its max_keys)")
            && refused.contains("raise max_keys"),
        "{refused}"
    );
    assert_eq!(get(&store, "d"), None, "nothing stored");
    // What is there still reads and changes; a deleted key makes room.
    set(&store, "a", "2").unwrap();
    assert_eq!(get(&store, "a").as_deref(), Some("2"));
    let increment = kv::IncrementRequest {
        key: "e".into(),
        value: 1,
    };
    assert!(
        store
            .apply(kv::INCREMENT, &encode(&increment).unwrap())
            .is_err()
    );
    del(&store, "b");
    assert_eq!(
        decode::<i32>(
            &store
                .apply(kv::INCREMENT, &encode(&increment).unwrap())
                .unwrap()
        )
        .unwrap(),
        1
    );
}

#[test]
fn max_bytes_obeyed_and_enforced_for_strings_lists_and_sets() {
    let store = MemoryKeyValue::with_quota(Quota {
        max_bytes: 4096,
        ..Quota::default()
    });
    set(&store, "big", &"x".repeat(2000)).unwrap();
    let refused = set(&store, "bigger", &"x".repeat(2100)).unwrap_err();
    assert!(refused.contains("over its max_bytes of 4096"), "{refused}");
    // Replacing a value counts the new one instead of the old, not on top of it.
    set(&store, "big", &"y".repeat(3000)).unwrap();
    assert!(set(&store, "big", &"z".repeat(5000)).is_err());
    assert_eq!(
        get(&store, "big").unwrap(),
        "y".repeat(3000),
        "a refused write loses nothing"
    );

    // Members count too: a list of empty strings is not free.
    let mut added = 0;
    let add = |value: &str| {
        let request = kv::ListAddRequest {
            list_name: "list".into(),
            value: value.into(),
        };
        store.apply(kv::LIST_ADD, &encode(&request).unwrap())
    };
    while add("").is_ok() {
        added += 1;
        assert!(added < 100, "a list grew past the quota");
    }
    assert!(added > 0);
    let set_add = kv::SetAddRequest {
        set_name: "set".into(),
        value: "m".into(),
    };
    assert!(
        store
            .apply(kv::SET_ADD, &encode(&set_add).unwrap())
            .is_err()
    );

    // Everything deleted gives every byte back.
    del(&store, "big");
    let clear = encode("list").unwrap();
    store.apply(kv::LIST_CLEAR, &clear).unwrap();
    assert_eq!(store.usage(), (0, 0));
    assert!(store.apply(kv::SET_ADD, &encode(&set_add).unwrap()).is_ok());
    let set_del = kv::SetDelRequest {
        set_name: "set".into(),
        value: "m".into(),
    };
    store
        .apply(kv::SET_DEL, &encode(&set_del).unwrap())
        .unwrap();
    store.apply(kv::SET_CLEAR, &encode("set").unwrap()).unwrap();
    assert_eq!(store.usage(), (0, 0));
}
