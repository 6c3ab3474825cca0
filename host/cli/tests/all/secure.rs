//! A lattice set up as the README's security model says, over a real nats-server in operator
//! mode configured by `weft nats-config`: hosts and provider processes connect with the
//! members' credentials, `weft ctl` with the operator's. While the app serves under load: a
//! client without credentials is not admitted; the operator's credentials (stolen, say)
//! cannot join a provider's queue group to take its calls, nor invoke the actor directly;
//! the members' credentials (a compromised provider process) cannot publish a control
//! request; the operator, with both its credentials and its key, can. No request fails.

use crate::ctl::KeepAlive;
use crate::up::Up;
use crate::{HttpLoad, Weft, signed_actor};
use futures_util::StreamExt;
use std::time::Duration;
use weft_testing::NatsServer;

#[test]
fn a_lattice_set_up_as_the_security_model_says_refuses_strangers_and_insiders_while_serving() {
    let weft = Weft::new();
    let dir = weft.path("nats");
    let made = weft
        .run(&[
            "nats-config",
            "--lattice",
            "sec",
            "--out",
            dir.to_str().unwrap(),
        ])
        .ok();
    assert!(made.contains("member.creds"), "{made}");
    let (member, operator) = (dir.join("member.creds"), dir.join("operator.creds"));
    let nats = NatsServer::start_with(&["-c", dir.join("nats.conf").to_str().unwrap()]).unwrap();
    let url = nats.url();

    // kvcounter: HTTP in the host's process, key-value in a provider process of its own, so
    // every request crosses the lattice to the provider's queue group.
    let address = format!("127.0.0.1:{}", weft_testing::free_port().unwrap());
    let app = weft.path("secure.toml");
    std::fs::write(
        &app,
        format!(
            r#"
[[actors]]
path = {path:?}
[[providers]]
id = "http"
kind = "http-server"
[[providers]]
id = "kv"
kind = "keyvalue-memory"
process = true
[[links]]
actor = "kvcounter"
contract = "wasmcloud:httpserver"
provider = "http"
values = {{ address = "{address}" }}
[[links]]
actor = "kvcounter"
contract = "wasmcloud:keyvalue"
provider = "kv"
"#,
            path = signed_actor("kvcounter").to_str().unwrap()
        ),
    )
    .unwrap();
    // Owned: it stops when the test ends.
    let _host = Up::start_command(
        &weft,
        "host",
        &app,
        &[
            "--lattice",
            "sec",
            "--nats",
            &url,
            "--nats-creds",
            member.to_str().unwrap(),
            "--trust-any-issuer",
        ],
        &[],
    );
    let ctl = |creds: Option<&std::path::Path>, args: &[&str]| {
        let mut all = vec![
            "ctl",
            "--lattice",
            "sec",
            "--nats",
            &url,
            "--timeout-ms",
            "1500",
        ];
        if let Some(creds) = creds {
            all.extend(["--nats-creds", creds.to_str().unwrap()]);
        }
        all.extend_from_slice(args);
        weft.run(&all)
    };
    let load = HttpLoad::start(4, || {
        let mut client = KeepAlive::new(&address);
        move || client.get("/counter/secure")
    });

    // 1. No credentials: not admitted.
    let stranger = ctl(None, &["inventory"]);
    assert!(!stranger.output.status.success());
    assert!(
        stranger.stderr().contains("authorization"),
        "{}",
        stranger.stderr()
    );

    // 2. The operator's credentials, used to take the provider's calls and the actor's.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let taken = runtime.block_on(async {
        let client = async_nats::ConnectOptions::with_credentials_file(operator.clone())
            .await
            .unwrap()
            .connect(url.as_str())
            .await
            .unwrap();
        let calls = "weft.sec.provider.kv.call";
        let mut impostor = client
            .queue_subscribe(calls, calls.to_string())
            .await
            .unwrap();
        let mut actors = client.subscribe("weft.sec.actor.>").await.unwrap();
        let _ = client.publish("weft.sec.actor.MANY", "x".into()).await;
        let _ = client.flush().await;
        let window = tokio::time::sleep(Duration::from_secs(2));
        tokio::pin!(window);
        let mut taken = 0;
        loop {
            tokio::select! {
                Some(_) = impostor.next() => taken += 1,
                Some(_) = actors.next() => taken += 1,
                () = &mut window => break,
            }
        }
        taken
    });
    assert_eq!(taken, 0, "the operator's credentials took lattice calls");

    // 3. The members' credentials publish no control request.
    let insider = ctl(Some(&member), &["scale", "kvcounter", "1"]);
    assert!(!insider.output.status.success(), "{}", insider.stdout());
    let inventory = ctl(Some(&operator), &["inventory"]).ok();
    assert!(!inventory.contains("max 1 "), "{inventory}");

    // 4. The operator, with its credentials and key: carried out.
    ctl(Some(&operator), &["scale", "kvcounter", "3"]).ok();
    let inventory = ctl(Some(&operator), &["inventory"]).ok();
    // The inventory names who made the change: the operator's key.
    assert!(inventory.contains("max 3  by O"), "{inventory}");

    let (ok, failures) = load.finish();
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(ok > 50, "only {ok} requests served");
}
