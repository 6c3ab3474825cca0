//! # weft-testing — what Weft's tests share
//!
//! - [`servers`]: real `nats-server` and `redis-server` processes on free loopback ports,
//!   killed and reaped on drop, restartable on the same port with the same data;
//! - [`actors`]: where the test command leaves the example actors, built and signed;
//! - [`keyvalue`]: the `wasmcloud:keyvalue` conformance suite every key-value provider must
//!   pass, so the in-memory and Redis providers answer alike;
//! - [`fuzz`]: the fuzzing driver every parser of untrusted bytes is run under.
//!
//! **What it is not:** mocks. A missing server binary is an error that names its package.
//! This crate is only ever a dev-dependency; it asserts (panics) by design.
#![deny(missing_docs)]

pub mod actors;
pub mod fuzz;
pub mod keyvalue;
pub mod process;
pub mod servers;

pub use servers::{
    ChromeDriver, NatsCluster, NatsServer, Process, RedisServer, ServerError, free_port,
};
