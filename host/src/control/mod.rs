//! The control plane: one handler ([`Control`]) that takes a [`ControlRequest`] (start, stop,
//! scale or update an actor; start, replace or stop a provider; put or delete a link; the
//! inventory) and answers what the host did ([`Done`]), with two transports in front of it:
//! [`nats`] (every host of a lattice, driven by `weft ctl`) and [`local`] (the endpoint of
//! `weft up` on this machine, driven by `weft link`, `weft actors` and `weft update`).
//!
//! A program that embeds `weft-host` gets the same control plane as the `weft` binary: it
//! hands [`Control::new`] a [`ProviderFactory`] for the provider kinds it carries (the host
//! itself names none) and serves either transport.
//!
//! ```no_run
//! use std::collections::BTreeMap;
//! use std::sync::Arc;
//! use weft_host::control::{Control, ProviderFactory, local};
//! use weft_host::{Host, HostConfig};
//! use weft_provider_sdk::Provider;
//!
//! struct NoProviders;
//! impl ProviderFactory for NoProviders {
//!     fn provider(&self, kind: &str, _: &BTreeMap<String, String>) -> Result<Arc<dyn Provider>, String> {
//!         Err(format!("this program carries no provider of kind {kind}"))
//!     }
//! }
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let host = Host::new(HostConfig::default())?;
//! let control = Arc::new(Control::new(host, Arc::new(NoProviders), BTreeMap::new()));
//! let listener = local::Listener::bind(&local::Endpoint::default_socket()).await?;
//! tokio::spawn(local::serve(control, listener));
//! # Ok(())
//! # }
//! ```

pub mod audit;
mod canary;
mod handler;
pub mod local;
pub mod nats;
mod observe;
mod replace;
mod wire;

pub use handler::{Control, ControlError, ProcessStatus, ProviderFactory, ProviderProcess};
pub use wire::{
    ActorSummary, ControlRequest, Done, Event, EventKind, HostInventory, ProviderSummary, revision,
};
