//! `weft link put|del|list` and `weft actors`: talk to a running `weft up` through its control
//! endpoint, so links change while actors serve.

use crate::control::{self, names};
use crate::output::Out;
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use std::collections::BTreeMap;
use std::io::Write;
use weft_host::control::{ControlRequest, revision};
use weft_provider_sdk::LinkDefinition;

#[derive(Args)]
pub struct ControlArgs {
    /// The running `weft up`'s control endpoint: a socket path, or a loopback HOST:PORT
    /// [default: the socket in the user's runtime directory]
    #[arg(long, env = "WEFT_CONTROL", global = true)]
    pub(crate) control: Option<String>,
    /// Print JSON instead of a table
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

#[derive(Subcommand)]
pub enum LinkCommand {
    /// Link an actor to a provider for a contract (replaces the link of the same name)
    Put {
        /// The actor's name or module key
        actor: String,
        /// The contract id, e.g. wasmcloud:keyvalue
        contract: String,
        /// The provider's id in the app
        provider: String,
        /// The link name
        #[arg(long, default_value = weft_provider_sdk::DEFAULT_LINK_NAME)]
        link_name: String,
        /// A setting for the provider, KEY=VALUE (repeatable)
        #[arg(long = "value", value_name = "KEY=VALUE")]
        values: Vec<String>,
    },
    /// Delete a link; the actor's calls through it fail from then on
    Del {
        /// The actor's name or module key
        actor: String,
        /// The contract id
        contract: String,
        /// The link name
        #[arg(long, default_value = weft_provider_sdk::DEFAULT_LINK_NAME)]
        link_name: String,
    },
    /// List the links in force (`get ACTOR`: the links of one actor)
    #[command(visible_alias = "get")]
    List {
        /// Only this actor's links (its name or module key)
        actor: Option<String>,
    },
}

/// `KEY=VALUE` arguments of `flag` (link values, provider config, host labels) as a map.
pub fn key_values(pairs: &[String], flag: &str) -> Result<BTreeMap<String, String>> {
    pairs
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
            _ => bail!("{flag} {pair:?} is not KEY=VALUE"),
        })
        .collect()
}

pub async fn run(command: LinkCommand, args: ControlArgs) -> Result<()> {
    let mut out = Out::stdout();
    let endpoint = control::endpoint(args.control.as_deref())?;
    let inventory = control::inventory(&endpoint).await?;
    match command {
        LinkCommand::Put {
            actor,
            contract,
            provider,
            link_name,
            values,
        } => {
            let link = LinkDefinition {
                actor_id: control::resolve_actor(names(&inventory.actors), &actor)?,
                contract_id: contract,
                link_name,
                provider_id: provider,
                values: key_values(&values, "--value")?,
            };
            control::request(&endpoint, &ControlRequest::PutLink(link.clone()))
                .await
                .context("link put failed")?;
            writeln!(
                out,
                "linked {} → {} ({}, link {})",
                link.actor_id, link.provider_id, link.contract_id, link.link_name
            )?;
        }
        LinkCommand::Del {
            actor,
            contract,
            link_name,
        } => {
            let request = ControlRequest::DeleteLink {
                actor_id: control::resolve_actor(names(&inventory.actors), &actor)?,
                contract_id: contract.clone(),
                link_name: link_name.clone(),
            };
            control::request(&endpoint, &request)
                .await
                .context("link del failed")?;
            writeln!(out, "deleted link {link_name} of {actor} for {contract}")?;
        }
        LinkCommand::List { actor } => {
            let mut links = inventory.links;
            if let Some(actor) = actor {
                let Some(id) = inventory
                    .actors
                    .iter()
                    .find(|a| a.id == actor || a.name == actor)
                    .map(|a| a.id.clone())
                else {
                    bail!("no running actor is named or keyed {actor:?}; `weft actors` lists them");
                };
                links.retain(|l| l.actor_id == id);
            }
            if args.json {
                writeln!(out, "{}", serde_json::to_string_pretty(&links)?)?;
            } else if links.is_empty() {
                writeln!(out, "no links")?;
            } else {
                writeln!(
                    out,
                    "{:<58} {:<28} {:<10} {:<12} VALUES",
                    "ACTOR", "CONTRACT", "LINK", "PROVIDER"
                )?;
                for l in links {
                    writeln!(
                        out,
                        "{:<58} {:<28} {:<10} {:<12} {:?}",
                        l.actor_id, l.contract_id, l.link_name, l.provider_id, l.values
                    )?;
                }
            }
        }
    }
    Ok(())
}

pub async fn actors(args: ControlArgs) -> Result<()> {
    let mut out = Out::stdout();
    let endpoint = control::endpoint(args.control.as_deref())?;
    let actors = control::inventory(&endpoint).await?.actors;
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&actors)?)?;
        return Ok(());
    }
    for a in actors {
        let revision = revision(a.revision);
        let caps = a.capabilities.join(", ");
        writeln!(
            out,
            "{:<16} {} rev {revision}{} {} [{caps}] {}",
            a.name,
            a.id,
            crate::ctl::canary_text(a.canary.as_ref()),
            a.generation,
            crate::ctl::health_text(a.health.as_ref())
        )?;
    }
    Ok(())
}
