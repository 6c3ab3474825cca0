//! Hosts on a lattice over a real `nats-server`, with the Redis provider served by the
//! provider SDK's runner over NATS (as in its own process) against a real `redis-server`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wascap::contracts;
use weft_contracts::httpserver::{HANDLE_REQUEST, HttpRequest, HttpResponse};
use weft_host::{Host, HostConfig, InvokeError};
use weft_keyvalue_redis::RedisKeyValue;
use weft_lattice::calls::ProviderCaller;
use weft_lattice::{self as lattice, NatsOptions};
use weft_provider_sdk::LinkDefinition;
use weft_provider_sdk::runner::{self, RunnerOptions};
use weft_testing::{NatsServer, RedisServer};

pub(crate) const LATTICE: &str = "test";

fn nats_options(nats: &NatsServer) -> NatsOptions {
    NatsOptions {
        url: nats.url(),
        ..NatsOptions::default()
    }
}

/// A host joined to the lattice with `options`, or why the connection was refused.
async fn join_with(options: NatsOptions) -> Result<Host, lattice::LatticeError> {
    let host = Host::new(HostConfig::default()).unwrap();
    let member = lattice::Member::join(
        lattice::connect(&options).await?,
        LATTICE,
        "host",
        crate::credentials(),
    )
    .await?;
    host.join_lattice(member).await.unwrap();
    Ok(host)
}

/// An actor started on `a` answers a call made through `b`.
async fn assert_serve_each_other(a: &Host, b: &Host) {
    let module = std::fs::read(crate::signed_actor("echo")).unwrap();
    let echo = a.start_actor(&module).await.unwrap().id;
    assert_eq!(
        b.invoke(&echo, "echo", b"across the lattice")
            .await
            .unwrap(),
        b"across the lattice"
    );
}

pub(crate) async fn member(nats: &NatsServer) -> Host {
    join_with(nats_options(nats)).await.unwrap()
}

/// Serves the Redis provider as `redis` on the lattice until the sender is dropped; returns
/// once it answers health checks.
pub(crate) async fn redis_provider(nats: &NatsServer) -> tokio::sync::oneshot::Sender<()> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = RunnerOptions {
        nats: nats_options(nats),
        lattice: LATTICE.into(),
        credentials: crate::credentials().clone(),
        provider_id: "redis".into(),
        actor_call_deadline: Duration::from_secs(5),
        announce_ready: None,
        own_health: None,
    };
    tokio::spawn(runner::run(
        Arc::new(RedisKeyValue::new(None)),
        options,
        async move {
            let _ = stopped.await;
        },
    ));
    let client = crate::join(&nats.url(), LATTICE, "test").await;
    let subject = lattice::Subjects::new(LATTICE).provider_health("redis");
    let started = Instant::now();
    while lattice::request(
        &client,
        subject.clone(),
        Vec::new(),
        Duration::from_millis(500),
    )
    .await
    .is_err()
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the provider never came up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop
}

pub(crate) fn redis_link(actor: &str, redis: &RedisServer) -> LinkDefinition {
    LinkDefinition {
        actor_id: actor.into(),
        contract_id: contracts::KEYVALUE.into(),
        link_name: "default".into(),
        provider_id: "redis".into(),
        values: [("url".to_string(), redis.url())].into(),
    }
}

pub(crate) fn counter_request() -> Vec<u8> {
    weft_contracts::encode(&HttpRequest {
        method: "GET".into(),
        path: "/counter/shared".into(),
        ..HttpRequest::default()
    })
    .unwrap()
}

pub(crate) async fn count(host: &Host, actor: &str) -> Result<i64, InvokeError> {
    let answer = host
        .invoke(actor, HANDLE_REQUEST, &counter_request())
        .await?;
    let response = weft_contracts::decode::<HttpResponse>(&answer).unwrap();
    let text = String::from_utf8(response.body).unwrap();
    assert_eq!(response.status_code, 200, "{text}");
    Ok(text
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('}')
        .parse()
        .unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_share_an_out_of_process_redis_provider_and_reach_each_others_actors() {
    let nats = NatsServer::start().unwrap();
    let redis = RedisServer::start().unwrap();
    let _provider = redis_provider(&nats).await;
    let (a, b) = (member(&nats).await, member(&nats).await);
    let kvcounter = std::fs::read(crate::signed_actor("kvcounter")).unwrap();
    let actor = a.start_actor(&kvcounter).await.unwrap().id;
    b.start_actor(&kvcounter).await.unwrap();
    for host in [&a, &b] {
        host.put_link(redis_link(&actor, &redis)).await.unwrap();
    }

    // Each host's own instance, one Redis behind the provider process.
    assert_eq!(count(&a, &actor).await.unwrap(), 1);
    assert_eq!(count(&b, &actor).await.unwrap(), 2);
    assert_eq!(count(&a, &actor).await.unwrap(), 3);

    // A host that does not run the actor reaches it through the lattice.
    let c = member(&nats).await;
    assert_eq!(count(&c, &actor).await.unwrap(), 4);

    // A link deleted at runtime: the next call through that host fails naming the link...
    a.delete_link(&actor, contracts::KEYVALUE, "default")
        .await
        .unwrap();
    let err = a
        .invoke(&actor, HANDLE_REQUEST, &counter_request())
        .await
        .map(|answer| String::from_utf8_lossy(&answer).into_owned());
    let text = format!("{err:?}");
    assert!(
        text.contains("has no link for wasmcloud:keyvalue"),
        "{text}"
    );
    // ... and put again, it works, with nothing lost.
    a.put_link(redis_link(&actor, &redis)).await.unwrap();
    assert_eq!(count(&a, &actor).await.unwrap(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_is_not_on_the_lattice_is_a_clear_error_not_a_hang() {
    let nats = NatsServer::start().unwrap();
    let redis = RedisServer::start().unwrap();
    let host = member(&nats).await;
    let kvcounter = std::fs::read(crate::signed_actor("kvcounter")).unwrap();
    let actor = host.start_actor(&kvcounter).await.unwrap().id;

    let started = Instant::now();
    let err = host
        .put_link(redis_link(&actor, &redis))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    assert!(err.contains("provider redis refused the link"), "{err}");
    assert!(err.contains("no responders"), "{err}");

    let err = host
        .invoke("MNOSUCHACTOR", "Any.Thing", b"")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("weft.test.actor.MNOSUCHACTOR") && err.contains("no responders"),
        "{err}"
    );
}

/// NATS restarted mid-load: calls during the outage fail with an error (no hang), and hosts
/// and the provider reconnect by themselves and serve again within 5 s of the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_and_providers_reconnect_after_nats_restarts() {
    let mut nats = NatsServer::start().unwrap();
    let redis = RedisServer::start().unwrap();
    let _provider = redis_provider(&nats).await;
    let (a, c) = (member(&nats).await, member(&nats).await);
    let kvcounter = std::fs::read(crate::signed_actor("kvcounter")).unwrap();
    let actor = a.start_actor(&kvcounter).await.unwrap().id;
    a.put_link(redis_link(&actor, &redis)).await.unwrap();
    // Through the lattice twice over: c → a's actor → the provider process → Redis.
    assert_eq!(count(&c, &actor).await.unwrap(), 1);

    nats.kill();
    // Once the clients notice, calls fail at once; one made before they do fails at its
    // deadline (5 s). Either way: an error that says where, never a hang.
    let started = Instant::now();
    let err = count(&c, &actor).await.unwrap_err().to_string();
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    assert!(err.contains("over the lattice"), "{err}");
    let started = Instant::now();
    let err = count(&c, &actor).await.unwrap_err().to_string();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(err.contains("NATS is unreachable (reconnecting)"), "{err}");

    nats.restart().unwrap();
    let restarted = Instant::now();
    let mut acknowledged = 1;
    loop {
        if count(&c, &actor).await.is_ok() {
            acknowledged += 1;
            break;
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(5),
            "not serving again 5 s after NATS restarted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for _ in 0..20 {
        count(&c, &actor).await.unwrap();
        acknowledged += 1;
    }
    let total = count(&a, &actor).await.unwrap() - 1;
    assert!(
        total >= acknowledged,
        "counter {total}, acknowledged {acknowledged}"
    );
}

/// Bodies over NATS's max_payload (1 MiB by default) travel in chunks: a 5 MiB payload to an
/// actor on another host and back, and a 5 MiB value into Redis through the provider process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_mib_payloads_cross_the_lattice() {
    let nats = NatsServer::start().unwrap();
    let redis = RedisServer::start().unwrap();
    let _provider = redis_provider(&nats).await;
    let (a, c) = (member(&nats).await, member(&nats).await);
    let echo = std::fs::read(crate::signed_actor("echo")).unwrap();
    let actor = a.start_actor(&echo).await.unwrap().id;
    let big: Vec<u8> = (0..5 << 20).map(|i: u32| (i % 251) as u8).collect();
    assert_eq!(c.invoke(&actor, "echo", &big).await.unwrap(), big);

    let client = crate::join(&nats.url(), LATTICE, "test").await;
    use futures_util::StreamExt;
    // A member's offer of a body over the limit is refused before anything is pulled, and
    // one naming a subject that is not an inbox is never pulled from.
    let actor_subject = lattice::Subjects::new(LATTICE).actor(&actor);
    let mut pulls = client.client().subscribe("_INBOX.offered").await.unwrap();
    let mut elsewhere = client
        .client()
        .subscribe("weft.test.elsewhere")
        .await
        .unwrap();
    lattice::round_trip(client.client(), Duration::from_secs(5))
        .await
        .unwrap();
    for (offer, refusal) in [
        (
            format!(
                "_INBOX.offered {} 1048576 00",
                lattice::chunks::MAX_BODY_BYTES + 1
            ),
            "over the",
        ),
        ("weft.test.elsewhere 100 10 00".to_string(), "malformed"),
    ] {
        let mut headers = async_nats::HeaderMap::new();
        client.seal(&actor_subject, offer.as_bytes(), &mut headers);
        headers.insert(lattice::chunks::CHUNKED_HEADER, offer.as_str());
        let answer = client
            .client()
            .request_with_headers(actor_subject.clone(), headers, Default::default())
            .await
            .unwrap();
        let answer: lattice::Answer = lattice::decode("test", &answer.payload).unwrap();
        let lattice::Answer::Err(failure) = answer else {
            panic!("an offer of {offer} was taken")
        };
        assert!(failure.message.contains(refusal), "{failure}");
    }
    let pulled = tokio::time::timeout(Duration::from_millis(300), async {
        tokio::select! {
            p = pulls.next() => p,
            p = elsewhere.next() => p,
        }
    })
    .await;
    assert!(
        pulled.is_err(),
        "a refused offer was pulled from: {pulled:?}"
    );

    let subject = crate::instance_calls(&client, "redis").await;
    let caller = ProviderCaller::start(client.clone(), subject, Duration::from_secs(10))
        .await
        .unwrap();
    let value = "v".repeat(5 << 20);
    tell(&client, &redis_link(&actor, &redis)).await.unwrap();
    let call = |operation: &str, payload: Vec<u8>| lattice::ProviderInvocation {
        link: redis_link(&actor, &redis).key(),
        operation: operation.into(),
        payload,
        deadline_ms: 0,
        traceparent: None,
    };
    let set = weft_contracts::keyvalue::SetRequest {
        key: "big".into(),
        value: value.clone(),
        expires: 0,
    };
    let set = call(
        weft_contracts::keyvalue::SET,
        weft_contracts::encode(&set).unwrap(),
    );
    caller.call(&set, Duration::from_secs(10)).await.unwrap();
    let get = call(
        weft_contracts::keyvalue::GET,
        weft_contracts::encode(&"big").unwrap(),
    );
    let answer = caller.call(&get, Duration::from_secs(10)).await.unwrap();
    let got: weft_contracts::keyvalue::GetResponse = weft_contracts::decode(&answer).unwrap();
    assert!(
        got.exists && got.value == value,
        "got {} bytes",
        got.value.len()
    );
}

/// NATS authentication is passed through to async-nats: a server that wants a user and
/// password or an nkey admits hosts that give them (and they serve each other), and refuses
/// one that gives none, with an error saying so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_user_password_and_nkey_are_passed_through() {
    let user = nkeys::KeyPair::new_user();
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        config.path(),
        format!(
            "authorization {{ users = [ {{ user: weft, password: s3cret }}, {{ nkey: {} }} ] }}\n",
            user.public_key()
        ),
    )
    .unwrap();
    let nats = NatsServer::start_with(&["-c", config.path().to_str().unwrap()]).unwrap();
    let with_password = join_with(NatsOptions {
        user_password: Some(("weft".into(), "s3cret".into())),
        ..nats_options(&nats)
    })
    .await
    .unwrap();
    let with_nkey = join_with(NatsOptions {
        nkey_seed: Some(user.seed().unwrap()),
        ..nats_options(&nats)
    })
    .await
    .unwrap();
    assert_serve_each_other(&with_password, &with_nkey).await;

    let refused = join_with(nats_options(&nats))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        refused.contains("authorization") && refused.contains("credentials"),
        "{refused}"
    );
    let wrong = join_with(NatsOptions {
        user_password: Some(("weft".into(), "guess".into())),
        ..nats_options(&nats)
    })
    .await
    .err()
    .unwrap()
    .to_string();
    assert!(wrong.contains("authorization"), "{wrong}");
}

/// TLS is passed through to async-nats: against a nats-server that requires TLS, hosts that
/// trust its CA (`--nats-tls-ca`) join and serve each other; one that does not is refused
/// with an error naming the certificate, not left hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_tls_with_a_private_ca_is_passed_through() {
    let dir = tempfile::tempdir().unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&server_key, &ca, &ca_key)
        .unwrap();
    let write = |name: &str, pem: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, pem).unwrap();
        path
    };
    let ca_file = write("ca.pem", ca.pem());
    let cert_file = write("server.pem", server.pem());
    let key_file = write("server-key.pem", server_key.serialize_pem());
    let config = write(
        "nats.conf",
        format!(
            "tls {{ cert_file: {:?}, key_file: {:?} }}\n",
            cert_file.display().to_string(),
            key_file.display().to_string()
        ),
    );
    let nats = NatsServer::start_with(&["-c", config.to_str().unwrap()]).unwrap();
    let trusting = || NatsOptions {
        tls_ca_file: Some(ca_file.clone()),
        require_tls: true,
        ..nats_options(&nats)
    };
    let a = join_with(trusting()).await.unwrap();
    let b = join_with(trusting()).await.unwrap();
    assert_serve_each_other(&a, &b).await;

    let untrusting = tokio::time::timeout(Duration::from_secs(10), join_with(nats_options(&nats)))
        .await
        .expect("a refused TLS handshake is an error, not a hang")
        .err()
        .unwrap()
        .to_string();
    assert!(untrusting.contains("certificate"), "{untrusting}");
}

/// A NATS JWT (`ed25519-nkey`) with `claims`, issued by `issuer` for `subject`.
fn nats_jwt(issuer: &nkeys::KeyPair, subject: &str, name: &str, nats: serde_json::Value) -> String {
    use data_encoding::BASE64URL_NOPAD;
    let header = BASE64URL_NOPAD.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let claims = serde_json::json!({
        // Unique per token; the server does not check how it was made. A fresh key is.
        "jti": nkeys::KeyPair::new_user().public_key(),
        "iat": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
        "iss": issuer.public_key(),
        "name": name,
        "sub": subject,
        "nats": nats,
    });
    let payload = BASE64URL_NOPAD.encode(claims.to_string().as_bytes());
    let signed = format!("{header}.{payload}");
    let signature = issuer.sign(signed.as_bytes()).unwrap();
    format!("{signed}.{}", BASE64URL_NOPAD.encode(&signature))
}

/// `.creds` (decentralised JWT auth) is passed through to async-nats: a nats-server in
/// operator mode admits hosts with a user's credentials file, and they serve each other; a
/// host without it is refused, naming the authorization.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_credentials_file_is_passed_through() {
    let operator = nkeys::KeyPair::new_operator();
    let account = nkeys::KeyPair::new_account();
    let user = nkeys::KeyPair::new_user();
    let unlimited = serde_json::json!({"subs": -1, "data": -1, "payload": -1});
    let operator_jwt = nats_jwt(
        &operator,
        &operator.public_key(),
        "weft-test",
        serde_json::json!({"type": "operator", "version": 2}),
    );
    let account_jwt = nats_jwt(
        &operator,
        &account.public_key(),
        "weft",
        serde_json::json!({
            "type": "account",
            "version": 2,
            "limits": {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
                       "wildcards": true, "conn": -1, "leaf": -1},
        }),
    );
    let mut user_claims = unlimited;
    user_claims["type"] = "user".into();
    user_claims["version"] = 2.into();
    let user_jwt = nats_jwt(&account, &user.public_key(), "host", user_claims);

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("nats.conf");
    std::fs::write(
        &config,
        format!(
            "operator: {operator_jwt}\nresolver: MEMORY\nresolver_preload: {{ {}: {account_jwt} }}\n",
            account.public_key()
        ),
    )
    .unwrap();
    let creds = dir.path().join("host.creds");
    std::fs::write(
        &creds,
        format!(
            "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n\
             -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
            user.seed().unwrap()
        ),
    )
    .unwrap();
    let nats = NatsServer::start_with(&["-c", config.to_str().unwrap()]).unwrap();
    let with_creds = || NatsOptions {
        credentials_file: Some(creds.clone()),
        ..nats_options(&nats)
    };
    let a = join_with(with_creds()).await.unwrap();
    let b = join_with(with_creds()).await.unwrap();
    assert_serve_each_other(&a, &b).await;
    let refused = join_with(nats_options(&nats))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(refused.contains("authorization"), "{refused}");
}

/// Sleeps for as many milliseconds as its call's payload says, then answers with the payload.
struct Sleepy;

#[weft_provider_sdk::async_trait]
impl weft_provider_sdk::Provider for Sleepy {
    fn contract_id(&self) -> &str {
        "weft:test-sleepy"
    }
    async fn handle_call(
        &self,
        call: weft_provider_sdk::ProviderCall,
    ) -> Result<Vec<u8>, weft_provider_sdk::ProviderError> {
        let ms: u64 = String::from_utf8_lossy(&call.payload).parse().unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(call.payload)
    }
}

/// Counts the messages on `subject` (a plain subscriber sees every message a queue group
/// gets) and, for each, the payloads of the provider calls it carries.
async fn spy_on_calls(
    client: &async_nats::Client,
    subject: String,
) -> Arc<Mutex<Vec<Vec<String>>>> {
    use futures_util::StreamExt;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut messages = client.subscribe(subject).await.unwrap();
    lattice::round_trip(client, Duration::from_secs(5))
        .await
        .unwrap();
    let record = seen.clone();
    tokio::spawn(async move {
        while let Some(message) = messages.next().await {
            // What is not a batch (the test's own malformed request) is not counted.
            let Ok(calls) =
                rmp_serde::from_slice::<Vec<(u64, serde_bytes::ByteBuf)>>(&message.payload)
            else {
                continue;
            };
            let payloads = calls
                .iter()
                .map(|(_, body)| {
                    let call: lattice::ProviderInvocation = lattice::decode("spy", body).unwrap();
                    String::from_utf8_lossy(&call.payload).into_owned()
                })
                .collect();
            record.lock().unwrap().push(payloads);
        }
    });
    seen
}

/// Tells the provider a link names of it (as a host does when the link is put), through
/// `member`.
pub(crate) async fn tell(
    member: &lattice::Member,
    link: &LinkDefinition,
) -> Result<(), weft_provider_sdk::Failure> {
    let subject = member.subjects().provider_link_put(&link.provider_id);
    let body = lattice::encode(&subject, link).unwrap();
    lattice::request(member, subject, body, Duration::from_secs(5))
        .await
        .map(|_| ())
}

fn sleepy_link() -> LinkDefinition {
    LinkDefinition {
        actor_id: "MTEST".into(),
        contract_id: "weft:test-sleepy".into(),
        link_name: "default".into(),
        provider_id: "sleepy".into(),
        values: Default::default(),
    }
}

fn sleepy_call(ms: u64) -> lattice::ProviderInvocation {
    lattice::ProviderInvocation {
        link: sleepy_link().key(),
        operation: "Sleepy.Sleep".into(),
        payload: ms.to_string().into_bytes(),
        deadline_ms: 0,
        traceparent: None,
    }
}

/// Calls made to one provider at the same moment share NATS messages (fewer messages than
/// calls), each caller still gets its own answer (each increments a key of its own by its
/// own amount and must read back exactly that), and a slow call does not hold back the
/// answers of the fast calls it travelled with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_provider_calls_share_messages_but_not_answers() {
    let nats = NatsServer::start().unwrap();
    let redis = RedisServer::start().unwrap();
    let _redis_provider = redis_provider(&nats).await;
    let client = crate::join(&nats.url(), LATTICE, "test").await;
    let subjects = lattice::Subjects::new(LATTICE);
    let seen = spy_on_calls(
        client.client(),
        subjects.provider_instance_calls("redis", "*"),
    )
    .await;
    let caller = Arc::new(
        ProviderCaller::start(
            client.clone(),
            crate::instance_calls(&client, "redis").await,
            Duration::from_secs(5),
        )
        .await
        .unwrap(),
    );
    tell(&client, &redis_link("MTEST", &redis)).await.unwrap();
    const CALLS: i32 = 400;
    let calls: Vec<_> = (1..=CALLS)
        .map(|amount| {
            let (caller, link) = (caller.clone(), redis_link("MTEST", &redis).key());
            tokio::spawn(async move {
                let increment = weft_contracts::keyvalue::IncrementRequest {
                    key: format!("own:{amount}"),
                    value: amount,
                };
                let invocation = lattice::ProviderInvocation {
                    link,
                    operation: weft_contracts::keyvalue::INCREMENT.into(),
                    payload: weft_contracts::encode(&increment).unwrap(),
                    deadline_ms: 0,
                    traceparent: None,
                };
                let answer = caller
                    .call(&invocation, Duration::from_secs(10))
                    .await
                    .unwrap();
                (amount, weft_contracts::decode::<i32>(&answer).unwrap())
            })
        })
        .collect();
    for call in calls {
        let (amount, answered) = call.await.unwrap();
        assert_eq!(
            answered, amount,
            "the call adding {amount} got another's answer"
        );
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let messages = seen.lock().unwrap().len();
    println!("{CALLS} concurrent calls travelled in {messages} messages");
    assert!(
        messages > 0 && messages <= CALLS as usize / 2,
        "{CALLS} calls took {messages} messages"
    );

    // A member's request the provider cannot read is answered saying so, not dropped.
    let subject = crate::instance_calls(&client, "redis").await;
    let mut sealed = async_nats::HeaderMap::new();
    client.seal(&subject, b"not a batch", &mut sealed);
    let unreadable = client
        .client()
        .request_with_headers(subject.clone(), sealed, "not a batch".into())
        .await
        .unwrap();
    let why = unreadable
        .headers
        .as_ref()
        .and_then(|h| h.get(weft_lattice::calls::BATCH_ERROR_HEADER))
        .map(|v| v.to_string())
        .unwrap_or_default();
    assert!(why.contains("malformed provider calls"), "{why:?}");
    // The same from a stranger (no seal) is dropped unanswered.
    let unsealed = tokio::time::timeout(
        Duration::from_millis(500),
        client.client().request(subject, "not a batch".into()),
    )
    .await;
    assert!(unsealed.is_err(), "a stranger was answered: {unsealed:?}");

    // Calls to a provider nobody serves fail at once, all of them, naming the subject.
    let nobody = Arc::new(
        ProviderCaller::start(
            client.clone(),
            subjects.provider_instance_calls("nobody", "XGONE"),
            Duration::from_secs(5),
        )
        .await
        .unwrap(),
    );
    let started = Instant::now();
    let failed: Vec<_> = (0..10)
        .map(|_| {
            let nobody = nobody.clone();
            tokio::spawn(async move {
                nobody
                    .call(&sleepy_call(0), Duration::from_secs(5))
                    .await
                    .unwrap_err()
            })
        })
        .collect();
    for error in failed {
        let error = error.await.unwrap().to_string();
        assert!(
            error.contains("weft.test.provider.nobody.instance.XGONE.call")
                && error.contains("no responders"),
            "{error}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    // A slow call and fast ones in one message: the fast answers come first. Which calls
    // share a message is up to scheduling, so this repeats until a message carried both.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(runner::run(
        Arc::new(Sleepy),
        RunnerOptions {
            nats: nats_options(&nats),
            lattice: LATTICE.into(),
            credentials: crate::credentials().clone(),
            provider_id: "sleepy".into(),
            actor_call_deadline: Duration::from_secs(5),
            announce_ready: None,
            own_health: None,
        },
        async move {
            let _ = stopped.await;
        },
    ));
    let seen = spy_on_calls(
        client.client(),
        subjects.provider_instance_calls("sleepy", "*"),
    )
    .await;
    let sleepy = Arc::new(
        ProviderCaller::start(
            client.clone(),
            crate::instance_calls(&client, "sleepy").await,
            Duration::from_secs(5),
        )
        .await
        .unwrap(),
    );
    // Until the provider has subscribed, telling it the link fails with "no responders".
    let started = Instant::now();
    while tell(&client, &sleepy_link()).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "sleepy never came up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A call naming a link the provider was not told of, and no host holds, fails saying so
    // (the call carries no values to use instead).
    let mut untold = sleepy_call(0);
    untold.link.link_name = "never-put".into();
    let refused = sleepy
        .call(&untold, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert_eq!(
        refused.kind,
        weft_provider_sdk::FailureKind::NoLink,
        "{refused}"
    );
    assert!(refused.message.contains("no host holds one"), "{refused}");
    while sleepy
        .call(&sleepy_call(0), Duration::from_secs(1))
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "sleepy never came up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut shared = false;
    for _ in 0..20 {
        seen.lock().unwrap().clear();
        let slow = {
            let sleepy = sleepy.clone();
            tokio::spawn(async move {
                sleepy
                    .call(&sleepy_call(1500), Duration::from_secs(5))
                    .await
            })
        };
        let fast: Vec<_> = (0..20)
            .map(|_| {
                let sleepy = sleepy.clone();
                tokio::spawn(async move {
                    let started = Instant::now();
                    sleepy
                        .call(&sleepy_call(0), Duration::from_secs(5))
                        .await
                        .unwrap();
                    started.elapsed()
                })
            })
            .collect();
        let mut slowest_fast = Duration::ZERO;
        for call in fast {
            slowest_fast = slowest_fast.max(call.await.unwrap());
        }
        assert_eq!(slow.await.unwrap().unwrap(), b"1500");
        shared = seen
            .lock()
            .unwrap()
            .iter()
            .any(|payloads| payloads.len() > 1 && payloads.iter().any(|p| p == "1500"));
        if shared {
            assert!(
                slowest_fast < Duration::from_millis(1000),
                "a fast call sent with a 1500 ms one took {slowest_fast:?}"
            );
            break;
        }
    }
    assert!(shared, "in 20 tries the slow call never shared a message");
    let _ = stop.send(());
}

/// A host on `nats` whose calls may take `deadline_ms`.
async fn member_with_deadline(nats: &NatsServer, deadline_ms: u64) -> Host {
    let host = Host::new(HostConfig {
        policy: weft_host::LoadPolicy {
            limits: weft_host::Limits {
                call_deadline_ms: deadline_ms,
                max_instances: 1,
                ..weft_host::Limits::default()
            },
            ..weft_host::LoadPolicy::default()
        },
        ..HostConfig::default()
    })
    .unwrap();
    host.join_lattice(crate::join(&nats.url(), LATTICE, "host").await)
        .await
        .unwrap();
    host
}

/// The caller's deadline travels with a lattice invocation (regression: the serving host ran
/// the call for its own 5 s deadline after a caller with 300 ms had given up, holding its
/// only instance all that time). Busy and deadline failures keep their kind across the hop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lattice_invocation_runs_within_its_caller_s_deadline() {
    let nats = NatsServer::start().unwrap();
    let serving = member_with_deadline(&nats, 5_000).await;
    let calling = member_with_deadline(&nats, 300).await;
    let actor = serving.start_actor(&crate::guest(&[])).await.unwrap().id;

    let started = Instant::now();
    let err = calling
        .invoke(&actor, "run", &crate::cmd(b'l', 0))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(1_000),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        err.kind(),
        weft_provider_sdk::FailureKind::Deadline,
        "{err}"
    );

    // The serving host stopped the loop at the caller's deadline, so its one instance is
    // free again at once, not after its own 5 s.
    let started = Instant::now();
    assert_eq!(
        serving
            .invoke(&actor, "run", &crate::cmd(b'e', 7))
            .await
            .unwrap(),
        crate::cmd(b'e', 7)
    );
    assert!(
        started.elapsed() < Duration::from_millis(1_000),
        "the instance was still held: {:?}",
        started.elapsed()
    );

    // A busy actor is busy on the other side of the lattice too (503, not a generic error).
    let looping = {
        let serving = serving.clone();
        let actor = actor.clone();
        tokio::spawn(async move { serving.invoke(&actor, "run", &crate::cmd(b'l', 0)).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let err = calling
        .invoke(&actor, "run", &crate::cmd(b'e', 1))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), weft_provider_sdk::FailureKind::Busy, "{err}");
    looping.abort();
}

/// A provider whose calls wait at a gate until the test opens it, counting how many wait at
/// once.
struct Gate {
    inside: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
    open: tokio::sync::Semaphore,
}

impl Gate {
    /// Waits (up to `fill_within`) until `MESSAGES_IN_FLIGHT` calls wait at the gate, checks
    /// a while later that no more ever did, then opens it: each of the `calls` waiting
    /// answers.
    async fn holds_the_bound_then_answers_all(
        &self,
        mut waiting: tokio::task::JoinSet<Result<Vec<u8>, weft_provider_sdk::Failure>>,
        calls: usize,
        fill_within: Duration,
    ) {
        use std::sync::atomic::Ordering;
        let deadline = Instant::now() + fill_within;
        while self.inside.load(Ordering::SeqCst) < lattice::MESSAGES_IN_FLIGHT {
            assert!(
                Instant::now() < deadline,
                "only {} calls reached the provider",
                self.inside.load(Ordering::SeqCst)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            self.most.load(Ordering::SeqCst),
            lattice::MESSAGES_IN_FLIGHT,
            "up to the bound at once, never past it"
        );
        self.open.add_permits(calls);
        let mut answered = 0;
        while let Some(answer) = waiting.join_next().await {
            assert_eq!(answer.unwrap().unwrap(), b"through");
            answered += 1;
        }
        assert_eq!(answered, calls, "every call answered once room was made");
    }
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            inside: Default::default(),
            most: Default::default(),
            open: tokio::sync::Semaphore::new(0),
        }
    }
}

#[weft_provider_sdk::async_trait]
impl weft_provider_sdk::Provider for Gate {
    fn contract_id(&self) -> &str {
        contracts::KEYVALUE
    }
    async fn handle_call(
        &self,
        _: weft_provider_sdk::ProviderCall,
    ) -> Result<Vec<u8>, weft_provider_sdk::ProviderError> {
        use std::sync::atomic::Ordering;
        let now = self.inside.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        let _passed = self.open.acquire().await;
        self.inside.fetch_sub(1, Ordering::SeqCst);
        Ok(b"through".to_vec())
    }
}

/// A provider process serves at most `weft_lattice::MESSAGES_IN_FLIGHT` messages of its call
/// subscription at once (each a task holding its body); the rest wait in the subscription,
/// and every one is answered once room is made. 300 callers each send one call (one message
/// each) to a provider whose calls all wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_process_serves_at_most_its_messages_in_flight_and_answers_the_rest() {
    let nats = NatsServer::start().unwrap();
    let gate = Arc::new(Gate::default());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = RunnerOptions {
        nats: nats_options(&nats),
        lattice: LATTICE.into(),
        credentials: crate::credentials().clone(),
        provider_id: "gate".into(),
        actor_call_deadline: Duration::from_secs(30),
        announce_ready: None,
        own_health: None,
    };
    tokio::spawn(runner::run(gate.clone(), options, async move {
        let _ = stopped.await;
    }));
    let member = crate::join(&nats.url(), LATTICE, "callers").await;
    let subjects = lattice::Subjects::new(LATTICE);
    let link = LinkDefinition {
        actor_id: "MCALLER".into(),
        contract_id: contracts::KEYVALUE.into(),
        link_name: "default".into(),
        provider_id: "gate".into(),
        values: Default::default(),
    };
    let started = Instant::now();
    while lattice::request(
        &member,
        subjects.provider_link_put("gate"),
        weft_contracts::encode(&link).unwrap(),
        Duration::from_millis(500),
    )
    .await
    .is_err()
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the provider never came up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let invocation = lattice::ProviderInvocation {
        link: link.key(),
        operation: "Gate.Pass".into(),
        payload: Vec::new(),
        deadline_ms: 25_000,
        traceparent: None,
    };
    let calls = 300;
    let mut waiting = tokio::task::JoinSet::new();
    let gate_calls = crate::instance_calls(&member, "gate").await;
    for _ in 0..calls {
        let caller =
            ProviderCaller::start(member.clone(), gate_calls.clone(), Duration::from_secs(5))
                .await
                .unwrap();
        let invocation = invocation.clone();
        waiting.spawn(async move {
            let answer = caller.call(&invocation, Duration::from_secs(25)).await;
            drop(caller);
            answer
        });
    }
    gate.holds_the_bound_then_answers_all(waiting, calls, Duration::from_secs(15))
        .await;
    drop(stop);
}

/// A host serves at most `weft_lattice::MESSAGES_IN_FLIGHT` invocations of one actor from the
/// lattice at once (each a task holding its body); the rest wait in the subscription and are
/// served once room is made. 300 invocations, each its own message, of an actor whose calls
/// wait at a gate in their provider.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_serves_at_most_its_messages_in_flight_of_an_actor_and_answers_the_rest() {
    let nats = NatsServer::start().unwrap();
    let host = member(&nats).await;
    let gate = Arc::new(Gate::default());
    host.add_provider("gate", gate.clone()).await.unwrap();
    let actor = host
        .start_actor_with(&crate::guest(&[contracts::KEYVALUE]), Some(400))
        .await
        .unwrap()
        .id;
    host.put_link(LinkDefinition {
        actor_id: actor.clone(),
        contract_id: contracts::KEYVALUE.into(),
        link_name: "default".into(),
        provider_id: "gate".into(),
        values: Default::default(),
    })
    .await
    .unwrap();
    let caller = crate::join(&nats.url(), LATTICE, "callers").await;
    let calls = 300;
    let mut waiting = tokio::task::JoinSet::new();
    for _ in 0..calls {
        let (caller, actor) = (caller.clone(), actor.clone());
        waiting.spawn(async move {
            let invocation = lattice::ActorInvocation {
                operation: "run".into(),
                payload: crate::cmd(b'h', 0),
                origin: "test".into(),
                deadline_ms: 4_000,
                traceparent: None,
            };
            lattice::invoke_actor(&caller, &actor, invocation, Duration::from_secs(5)).await
        });
    }
    gate.holds_the_bound_then_answers_all(waiting, calls, Duration::from_secs(3))
        .await;
}
