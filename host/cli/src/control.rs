//! The `weft` commands that drive a running `weft up` on this machine (`weft link`,
//! `weft actors`, `weft update`) reach it through its local control endpoint
//! (`weft_host::control::local`); this is their side of it: one request, and actors named by
//! name or module key.

use anyhow::{Result, bail};
use weft_host::control::local::{self, Endpoint};
use weft_host::control::{ActorSummary, ControlRequest, Done, HostInventory};

/// The endpoint `--control` names, or the default socket.
pub fn endpoint(control: Option<&str>) -> Result<Endpoint> {
    Ok(match control {
        Some(text) => Endpoint::parse(text)?,
        None => Endpoint::default_socket(),
    })
}

/// Sends `request` to the `weft up` at `endpoint`.
pub async fn request(endpoint: &Endpoint, request: &ControlRequest) -> Result<Done> {
    Ok(local::request(endpoint, request).await?)
}

/// What the `weft up` at `endpoint` runs.
pub async fn inventory(endpoint: &Endpoint) -> Result<HostInventory> {
    match request(endpoint, &ControlRequest::Inventory).await? {
        Done::Inventory(inventory) => Ok(*inventory),
        other => bail!("the host answered an inventory request with {other:?}"),
    }
}

/// The module key of the actor named or keyed `name_or_id` among `actors` (id, name).
pub fn resolve_actor<'a>(
    actors: impl IntoIterator<Item = (&'a str, &'a str)> + Clone,
    name_or_id: &str,
) -> Result<String> {
    if let Some((id, _)) = actors.clone().into_iter().find(|(id, _)| *id == name_or_id) {
        return Ok(id.to_string());
    }
    let named: Vec<&str> = actors
        .clone()
        .into_iter()
        .filter(|(_, name)| *name == name_or_id)
        .map(|(id, _)| id)
        .collect();
    match named.as_slice() {
        [one] => Ok(one.to_string()),
        [] => bail!(
            "no running actor is named or keyed {name_or_id:?}; running: {}",
            actors
                .into_iter()
                .map(|(id, name)| format!("{name} ({id})"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => bail!("several running actors are named {name_or_id:?}; give its module key instead"),
    }
}

/// The (id, name) pairs of an inventory's actors.
pub fn names(actors: &[ActorSummary]) -> impl Iterator<Item = (&str, &str)> + Clone {
    actors.iter().map(|a| (a.id.as_str(), a.name.as_str()))
}
