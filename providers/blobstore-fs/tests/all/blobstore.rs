//! `wasmcloud:blobstore` on a real directory: containers, objects whole and by range, lists
//! and removals; a name with `..` or a separator refused before the filesystem is touched;
//! the object bound obeyed and violated; two links kept apart by their roots.

use std::sync::Arc;
use std::time::Duration;
use weft_blobstore_fs::FsBlobstore;
use weft_contracts::blobstore::*;
use weft_contracts::{decode, encode};
use weft_provider_sdk::{LinkDefinition, Provider, ProviderCall};

fn link(actor: &str, values: &[(&str, &str)]) -> Arc<LinkDefinition> {
    Arc::new(LinkDefinition {
        actor_id: actor.into(),
        contract_id: CONTRACT_ID.into(),
        link_name: "default".into(),
        provider_id: "blobs".into(),
        values: values
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    })
}

async fn call<T: serde::Serialize>(
    store: &FsBlobstore,
    link: &Arc<LinkDefinition>,
    operation: &str,
    request: &T,
) -> Result<Vec<u8>, String> {
    store
        .handle_call(ProviderCall {
            actor_id: link.actor_id.clone(),
            link: link.clone(),
            operation: operation.into(),
            payload: encode(request).unwrap(),
            time_left: Duration::from_secs(5),
        })
        .await
        .map_err(|e| e.to_string())
}

fn put(container: &str, object: &str, bytes: &[u8]) -> PutObjectRequest {
    PutObjectRequest {
        chunk: Chunk {
            object_id: object.into(),
            container_id: container.into(),
            bytes: bytes.to_vec(),
            offset: 0,
            is_last: true,
        },
        ..PutObjectRequest::default()
    }
}

#[tokio::test]
async fn objects_are_put_read_listed_and_removed_in_containers() {
    let root = tempfile::tempdir().unwrap();
    let store = FsBlobstore::new();
    let link = link("Ma", &[("root", root.path().to_str().unwrap())]);
    store.put_link(&link).await.unwrap();

    let exists: bool = decode(
        &call(&store, &link, CONTAINER_EXISTS, &"photos")
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(!exists);
    call(&store, &link, CREATE_CONTAINER, &"photos")
        .await
        .unwrap();
    let exists: bool = decode(
        &call(&store, &link, CONTAINER_EXISTS, &"photos")
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(exists);

    for (name, bytes) in [("b.txt", &b"second"[..]), ("a.txt", b"first object")] {
        call(&store, &link, PUT_OBJECT, &put("photos", name, bytes))
            .await
            .unwrap();
    }
    // Stored as plain files under the link's root.
    assert_eq!(
        std::fs::read(root.path().join("photos/a.txt")).unwrap(),
        b"first object"
    );

    let got: GetObjectResponse = decode(
        &call(
            &store,
            &link,
            GET_OBJECT,
            &GetObjectRequest {
                container_id: "photos".into(),
                object_id: "a.txt".into(),
                ..GetObjectRequest::default()
            },
        )
        .await
        .unwrap(),
    )
    .unwrap();
    assert!(got.success);
    assert_eq!(got.content_length, 12);
    assert_eq!(got.initial_chunk.unwrap().bytes, b"first object");

    let range: GetObjectResponse = decode(
        &call(
            &store,
            &link,
            GET_OBJECT,
            &GetObjectRequest {
                container_id: "photos".into(),
                object_id: "a.txt".into(),
                range_start: Some(6),
                range_end: Some(11),
            },
        )
        .await
        .unwrap(),
    )
    .unwrap();
    let chunk = range.initial_chunk.unwrap();
    assert_eq!((chunk.bytes.as_slice(), chunk.offset), (&b"object"[..], 6));

    let listed: ListObjectsResponse = decode(
        &call(
            &store,
            &link,
            LIST_OBJECTS,
            &ListObjectsRequest {
                container_id: "photos".into(),
                max_items: None,
            },
        )
        .await
        .unwrap(),
    )
    .unwrap();
    let names: Vec<_> = listed
        .objects
        .iter()
        .map(|o| (o.object_id.as_str(), o.size))
        .collect();
    assert_eq!(names, [("a.txt", 12), ("b.txt", 6)]);
    assert!(listed.is_last);
    let one: ListObjectsResponse = decode(
        &call(
            &store,
            &link,
            LIST_OBJECTS,
            &ListObjectsRequest {
                container_id: "photos".into(),
                max_items: Some(1),
            },
        )
        .await
        .unwrap(),
    )
    .unwrap();
    assert_eq!((one.objects.len(), one.is_last), (1, false));

    let failed: Vec<ItemResult> = decode(
        &call(
            &store,
            &link,
            REMOVE_OBJECTS,
            &RemoveObjectsRequest {
                container_id: "photos".into(),
                objects: vec!["a.txt".into(), "missing".into()],
            },
        )
        .await
        .unwrap(),
    )
    .unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].key, "missing");
    let exists: bool = decode(
        &call(
            &store,
            &link,
            OBJECT_EXISTS,
            &ContainerObject {
                container_id: "photos".into(),
                object_id: "a.txt".into(),
            },
        )
        .await
        .unwrap(),
    )
    .unwrap();
    assert!(!exists);

    let containers: Vec<ContainerMetadata> =
        decode(&call(&store, &link, LIST_CONTAINERS, &()).await.unwrap()).unwrap();
    assert_eq!(
        containers,
        [ContainerMetadata {
            container_id: "photos".into()
        }]
    );
    let failed: Vec<ItemResult> = decode(
        &call(&store, &link, REMOVE_CONTAINERS, &vec!["photos"])
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(failed.is_empty(), "{failed:?}");
    assert!(!root.path().join("photos").exists());
}

#[tokio::test]
async fn no_name_reaches_outside_the_links_root() {
    let outer = tempfile::tempdir().unwrap();
    let root = outer.path().join("root");
    let store = FsBlobstore::new();
    let link = link("Ma", &[("root", root.to_str().unwrap())]);
    store.put_link(&link).await.unwrap();
    call(&store, &link, CREATE_CONTAINER, &"c").await.unwrap();
    std::fs::write(outer.path().join("secret"), b"outside").unwrap();

    for (container, object) in [
        ("c", "../../secret"),
        ("..", "secret"),
        ("c", ".."),
        ("c/..", "x"),
        ("c", "a\\b"),
    ] {
        let err = call(
            &store,
            &link,
            GET_OBJECT,
            &GetObjectRequest {
                container_id: container.into(),
                object_id: object.into(),
                ..GetObjectRequest::default()
            },
        )
        .await
        .unwrap_err();
        assert!(
            err.contains("use one path component"),
            "{container}/{object}: {err}"
        );
        let err = call(&store, &link, PUT_OBJECT, &put(container, object, b"x"))
            .await
            .unwrap_err();
        assert!(
            err.contains("use one path component"),
            "{container}/{object}: {err}"
        );
    }
    assert_eq!(
        std::fs::read(outer.path().join("secret")).unwrap(),
        b"outside"
    );
    let err = call(&store, &link, CREATE_CONTAINER, &"..")
        .await
        .unwrap_err();
    assert!(err.contains("would leave its directory"), "{err}");

    // Another actor's link, another root: it does not see the first one's containers.
    let other_root = outer.path().join("other");
    let other = self::link("Mb", &[("root", other_root.to_str().unwrap())]);
    store.put_link(&other).await.unwrap();
    let exists: bool =
        decode(&call(&store, &other, CONTAINER_EXISTS, &"c").await.unwrap()).unwrap();
    assert!(!exists);
}

#[tokio::test]
async fn the_object_bound_is_obeyed_and_enforced() {
    let root = tempfile::tempdir().unwrap();
    let store = FsBlobstore::new();
    let link = link(
        "Ma",
        &[
            ("root", root.path().to_str().unwrap()),
            ("max_object_bytes", "1024"),
        ],
    );
    store.put_link(&link).await.unwrap();
    call(&store, &link, CREATE_CONTAINER, &"c").await.unwrap();
    call(&store, &link, PUT_OBJECT, &put("c", "fits", &[1; 1024]))
        .await
        .unwrap();
    let err = call(&store, &link, PUT_OBJECT, &put("c", "big", &[1; 1025]))
        .await
        .unwrap_err();
    assert!(
        err.contains("1025 bytes, over the link's max_object_bytes (1024)"),
        "{err}"
    );
    assert!(!root.path().join("c/big").exists());

    // An object over the bound (here put there by someone else) is refused whole, and read
    // by range.
    std::fs::write(root.path().join("c/large"), vec![7u8; 4096]).unwrap();
    let whole = GetObjectRequest {
        container_id: "c".into(),
        object_id: "large".into(),
        ..GetObjectRequest::default()
    };
    let err = call(&store, &link, GET_OBJECT, &whole).await.unwrap_err();
    assert!(err.contains("ask for a range"), "{err}");
    let part: GetObjectResponse = decode(
        &call(
            &store,
            &link,
            GET_OBJECT,
            &GetObjectRequest {
                range_start: Some(4000),
                range_end: Some(4095),
                ..whole
            },
        )
        .await
        .unwrap(),
    )
    .unwrap();
    let chunk = part.initial_chunk.unwrap();
    assert_eq!(
        (chunk.bytes.len(), chunk.offset, part.content_length),
        (96, 4000, 4096)
    );

    // Chunked uploads are refused, saying how to send it.
    let mut partial = put("c", "part", b"x");
    partial.chunk.is_last = false;
    let err = call(&store, &link, PUT_OBJECT, &partial).await.unwrap_err();
    assert!(err.contains("send the whole object in one chunk"), "{err}");

    // A link with no root, or a bound that is not a number, is refused when put.
    let err = store
        .put_link(&self::link("Mc", &[]))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("has no value root"), "{err}");
    let err = store
        .put_link(&self::link(
            "Mc",
            &[("root", "/tmp/x"), ("max_object_bytes", "big")],
        ))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("max_object_bytes=\"big\" is not a whole number"),
        "{err}"
    );
}
