//! A provider's connections to the servers its links name (Redis, NATS, ...): one per URL,
//! shared by every link naming it, bounded in number, and made outside any lock that calls
//! to other URLs take.
//!
//! Why here: every provider that connects somewhere by link value needs the same three
//! things, and getting them wrong is how a provider is exhausted. Without a bound, a link
//! naming a new URL each time leaves a connection behind for good; with a connect under a lock
//! every call shares, one unreachable URL stalls every call for its connect timeout.
//!
//! A connection is kept while a link names its URL (or the provider's default URL names it);
//! once the last such link is deleted it is dropped, and clones held by calls in flight
//! finish with it. A call may need a URL no link was put with (a provider that restarted
//! hears of its links again as calls arrive); such a connection is kept too, and is the first
//! to go when the cache is full.
//!
//! **What it is not:** a pool (each URL has one multiplexed connection), or a reconnect
//! policy (the client library's).

use crate::{LinkDefinition, ProviderError};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::OnceCell;
use weft_contracts::link::LinkKey;

/// Default for the number of URLs one provider keeps connections to.
pub const DEFAULT_MAX_URLS: usize = 32;

/// One provider's connections, by URL.
pub struct Connections<C> {
    max_urls: usize,
    /// A URL no link needs to keep: the provider's own default.
    default_url: Option<String>,
    state: Mutex<State<C>>,
}

struct State<C> {
    /// Each URL's connection, made once by whichever call first needs it; the others wait on
    /// the cell, not on the map.
    by_url: HashMap<String, Arc<OnceCell<C>>>,
    /// The URL each link was put with.
    named_by: HashMap<LinkKey, String>,
}

impl<C> std::fmt::Debug for Connections<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connections")
            .field("max_urls", &self.max_urls)
            .field("urls", &self.lock().by_url.len())
            .finish()
    }
}

impl<C> Connections<C> {
    fn lock(&self) -> MutexGuard<'_, State<C>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<C: Clone> Connections<C> {
    /// Connections to at most `max_urls` URLs; `default_url` is kept whether or not a link
    /// names it.
    pub fn new(max_urls: usize, default_url: Option<String>) -> Self {
        Connections {
            max_urls: max_urls.max(1),
            default_url,
            state: Mutex::new(State {
                by_url: HashMap::new(),
                named_by: HashMap::new(),
            }),
        }
    }

    /// The connection to `url`, made with `connect` if there is none yet. Only calls for the
    /// same URL wait for `connect`; if it fails, the next call tries again.
    pub async fn get<F, Fut>(&self, url: &str, connect: F) -> Result<C, ProviderError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<C, ProviderError>>,
    {
        let cell = self.cell(url)?;
        cell.get_or_try_init(connect).await.cloned()
    }

    /// The cell of `url`, making room for it if needed.
    fn cell(&self, url: &str) -> Result<Arc<OnceCell<C>>, ProviderError> {
        self.cell_in(&mut self.lock(), url)
    }

    fn cell_in(&self, state: &mut State<C>, url: &str) -> Result<Arc<OnceCell<C>>, ProviderError> {
        if let Some(cell) = state.by_url.get(url) {
            return Ok(cell.clone());
        }
        if state.by_url.len() >= self.max_urls {
            let unnamed = state
                .by_url
                .keys()
                .find(|held| {
                    Some(held.as_str()) != self.default_url.as_deref()
                        && !state.named_by.values().any(|named| named == *held)
                })
                .cloned();
            match unnamed {
                Some(unnamed) => {
                    state.by_url.remove(&unnamed);
                }
                None => {
                    return Err(ProviderError::Backend(format!(
                        "cannot connect to {}: this provider already keeps connections to {} \
                         servers, its most, each named by a link; delete links naming other \
                         servers first",
                        weft_contracts::secret::scrub(url),
                        self.max_urls
                    )));
                }
            }
        }
        let cell = Arc::new(OnceCell::new());
        state.by_url.insert(url.to_string(), cell.clone());
        Ok(cell)
    }

    /// The URLs links name now, each once, with the connection made to each so far (none
    /// before a call needed it): what a health check looks at.
    pub fn named(&self) -> Vec<(String, Option<C>)> {
        let state = self.lock();
        let urls: std::collections::BTreeSet<&String> = state.named_by.values().collect();
        urls.into_iter()
            .map(|url| {
                let made = state.by_url.get(url).and_then(|cell| cell.get().cloned());
                (url.clone(), made)
            })
            .collect()
    }

    /// Records that `link` uses `url`, keeping its connection while the link stands. Refused
    /// if that would take the provider past its number of URLs.
    pub fn name(&self, link: &LinkDefinition, url: &str) -> Result<(), ProviderError> {
        let previous = {
            let mut state = self.lock();
            self.cell_in(&mut state, url)?;
            state.named_by.insert(link.key(), url.to_string())
        };
        if let Some(previous) = previous.filter(|previous| previous != url) {
            self.release_if_unnamed(&previous);
        }
        Ok(())
    }

    /// `link` is deleted: its URL's connection is dropped if no other link names it.
    pub fn unname(&self, link: &LinkDefinition) {
        let named = self.lock().named_by.remove(&link.key());
        if let Some(url) = named {
            self.release_if_unnamed(&url);
        }
    }

    fn release_if_unnamed(&self, url: &str) {
        let mut state = self.lock();
        let needed = Some(url) == self.default_url.as_deref()
            || state.named_by.values().any(|named| named == url);
        if !needed {
            state.by_url.remove(url);
        }
    }

    /// The connections made so far (to flush them before they are dropped, say).
    pub fn made(&self) -> Vec<C> {
        self.lock()
            .by_url
            .values()
            .filter_map(|cell| cell.get().cloned())
            .collect()
    }

    /// How many URLs it keeps connections (or cells for them) to.
    pub fn len(&self) -> usize {
        self.lock().by_url.len()
    }

    /// Whether it keeps none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
