//! Membership of a lattice: who may speak on it, and the seal on everything a member sends.
//!
//! Every process on a lattice (a host, a provider process, `weft ctl`) is a [`Member`]. Its
//! identity is a key of its own (an xkey, `X…`, made at start), named in a token that a
//! **lattice issuer** signed (a cluster nkey, `C…`: `--lattice-issuer`). A member trusts the
//! issuers in its [`Credentials`]: its own and any given with `--lattice-trust`. A process
//! without a token signed by a trusted issuer is not a member, whatever subject it uses.
//!
//! **Seals.** Everything a member sends carries two headers: [`FROM_HEADER`] (its id) and
//! [`SEAL_HEADER`] (a sequence number, the time, and an HMAC-SHA256 over the subject, both
//! and the body, under a random key only that member and the members it told hold). A
//! receiver drops a message that is unsealed, sealed by a key that is not a member's, altered,
//! sent to another subject, more than [`WINDOW`] old or new, or seen before; each drop is
//! counted ([`Member::refusals`]) and logged, at most once a second.
//!
//! **Why an HMAC and not a signature per message:** ed25519 costs ≈ 40 µs to sign and as much
//! to verify on the 2-core machine this is measured on, and an actor call across hosts makes
//! two messages: 160 µs on a ≈ 200 µs round trip. An HMAC costs about a microsecond. The
//! asymmetric step happens once per pair of members: a receiver that meets a sender it does
//! not know asks it for its key on `weft.{lattice}.member.{id}.key`, presenting its own
//! token; the sender checks that token and answers with its own token and its key sealed to
//! the asker's xkey (`crypto_box`, through nkeys' xkeys), so only a member learns a key and
//! only the member that asked can open it.
//!
//! **What a seal does not stop** (a production lattice adds NATS account permissions, see the
//! README's security model): reading messages (nothing is encrypted but the keys), a
//! non-member joining a queue group and taking calls it cannot answer, and a replay within
//! [`WINDOW`] to *another* member of the same queue group (each member remembers only what
//! it received).

use crate::{LatticeError, Subjects};
use ring::hmac;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{OnceCell, Semaphore, oneshot};

/// The header naming the member that sent a message.
pub const FROM_HEADER: &str = "Weft-From";
/// The header holding a message's seal: `{sequence}.{unix ms}.{tag}`.
pub const SEAL_HEADER: &str = "Weft-Seal";
/// How far a sealed message's time may be from the receiver's clock, either way.
pub const WINDOW: Duration = Duration::from_secs(30);
/// How many of a sender's latest sequence numbers a receiver remembers: a message older than
/// that (by sequence) is refused as a possible replay. Messages of one sender reach a
/// receiver in the order they were sealed, give or take its calls in flight.
pub const REPLAY_WINDOW: u64 = 1024;
/// Most chunked bodies a member reassembles at once; past it a large body is refused as busy.
pub const REASSEMBLIES_AT_ONCE: usize = 8;
/// Most members a member holds keys for (senders beyond it are refused until some leave).
pub const MAX_PEERS: usize = 4096;
/// Most keys fetched at once: a flood of messages naming made-up senders costs at most this
/// many requests in flight.
const FETCHES_AT_ONCE: usize = 16;
/// How long a key request may take.
const FETCH_WITHIN: Duration = Duration::from_secs(2);
/// The largest key request or answer read (a token and a sealed key are well under 1 KiB).
const MAX_KEY_MESSAGE_BYTES: usize = 8 << 10;

/// Why a member refused a message (or could not join).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// No seal headers: not sent by a member.
    #[error(
        "the message is not sealed by a lattice member (no {FROM_HEADER}/{SEAL_HEADER} headers)"
    )]
    Unsealed,
    /// Seal headers that cannot be read.
    #[error("malformed seal: {0}")]
    Malformed(String),
    /// The sender's key could not be learned, or its token is not trusted.
    #[error("sender {from} is not a member of this lattice: {reason}")]
    NotMember {
        /// The id it claimed.
        from: String,
        /// Why.
        reason: String,
    },
    /// The tag does not match: forged, altered, or sent to another subject.
    #[error("the seal of {from} does not match the message: forged, altered or redirected")]
    BadSeal {
        /// The id it claimed.
        from: String,
    },
    /// Outside the time window.
    #[error("sealed {skew_ms} ms away from this member's clock, outside the window")]
    Stale {
        /// How far from now.
        skew_ms: u64,
    },
    /// A sequence number seen before, or too old to tell.
    #[error("a replay: {from} already sent sequence number {seq}")]
    Replayed {
        /// The sender.
        from: String,
        /// The sequence number.
        seq: u64,
    },
    /// A token that does not verify.
    #[error("membership token refused: {0}")]
    Token(String),
}

impl Refusal {
    /// Every reason's name, in the order [`Refusal::reason`] numbers them.
    pub const REASONS: [&'static str; 7] = [
        "unsealed",
        "malformed",
        "not_member",
        "bad_seal",
        "stale",
        "replayed",
        "token",
    ];

    /// Its reason's place in [`Refusal::REASONS`].
    pub fn reason(&self) -> usize {
        match self {
            Refusal::Unsealed => 0,
            Refusal::Malformed(_) => 1,
            Refusal::NotMember { .. } => 2,
            Refusal::BadSeal { .. } => 3,
            Refusal::Stale { .. } => 4,
            Refusal::Replayed { .. } => 5,
            Refusal::Token(_) => 6,
        }
    }
}

/// What a member sent and received so far: messages it sealed, messages that opened (sealed
/// by a member, fresh, not replayed), and the ones it refused by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Messages sealed and sent (each chunk of a large body counts).
    pub sent: u64,
    /// Messages received and opened.
    pub received: u64,
    /// Messages refused, by reason, as [`Refusal::REASONS`] names them.
    pub refused: [u64; 7],
}

/// What a member's token says, signed by a lattice issuer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Claims {
    /// The member's id: its xkey's public key.
    member: String,
    /// What it calls itself (a host id, a provider id, `weft ctl`), for logs.
    name: String,
    /// The issuer's public key.
    issuer: String,
    issued_ms: u64,
}

/// A member's token: its claims, and the issuer's ed25519 signature over them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Token {
    #[serde(with = "serde_bytes")]
    claims: Vec<u8>,
    #[serde(with = "serde_bytes")]
    signature: Vec<u8>,
}

impl Token {
    pub(crate) fn mint(
        issuer: &nkeys::KeyPair,
        member: &str,
        name: &str,
    ) -> Result<Token, Refusal> {
        let claims = rmp_serde::to_vec_named(&Claims {
            member: member.to_string(),
            name: name.to_string(),
            issuer: issuer.public_key(),
            issued_ms: now_ms(),
        })
        .map_err(|e| Refusal::Token(e.to_string()))?;
        let signature = issuer
            .sign(&claims)
            .map_err(|e| Refusal::Token(format!("the lattice issuer cannot sign: {e}")))?;
        Ok(Token { claims, signature })
    }

    /// The claims, if an issuer in `trusted` signed them.
    pub(crate) fn verify(bytes: &[u8], trusted: &BTreeSet<String>) -> Result<Claims, Refusal> {
        if bytes.len() > MAX_KEY_MESSAGE_BYTES {
            return Err(Refusal::Token(format!(
                "{} bytes, more than {MAX_KEY_MESSAGE_BYTES}",
                bytes.len()
            )));
        }
        let token: Token =
            rmp_serde::from_slice(bytes).map_err(|e| Refusal::Token(e.to_string()))?;
        let claims: Claims =
            rmp_serde::from_slice(&token.claims).map_err(|e| Refusal::Token(e.to_string()))?;
        if !trusted.contains(&claims.issuer) {
            return Err(Refusal::Token(format!(
                "issued by {}, which this member does not trust (give it with --lattice-trust)",
                claims.issuer
            )));
        }
        nkeys::KeyPair::from_public_key(&claims.issuer)
            .and_then(|issuer| issuer.verify(&token.claims, &token.signature))
            .map_err(|_| Refusal::Token(format!("the signature of {} is forged", claims.issuer)))?;
        Ok(claims)
    }
}

/// What a process needs to join a lattice: the issuer key that signs its token, and the
/// issuers whose members it trusts.
#[derive(Clone)]
pub struct Credentials {
    issuer: Arc<nkeys::KeyPair>,
    trusted: BTreeSet<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the seed.
        f.debug_struct("Credentials")
            .field("issuer", &self.issuer.public_key())
            .field("trusted", &self.trusted)
            .finish()
    }
}

impl Credentials {
    /// Signs with `issuer` (a key with its seed), trusting its members and those of
    /// `also_trusted` (issuers' public keys).
    pub fn new(
        issuer: nkeys::KeyPair,
        also_trusted: impl IntoIterator<Item = String>,
    ) -> Result<Self, LatticeError> {
        if issuer.seed().is_err() {
            return Err(LatticeError::Membership(
                "the lattice issuer must be a seed (S…), not a public key".into(),
            ));
        }
        let mut trusted: BTreeSet<String> = also_trusted.into_iter().collect();
        trusted.insert(issuer.public_key());
        Ok(Credentials {
            issuer: Arc::new(issuer),
            trusted,
        })
    }

    /// A new lattice issuer of its own (for tests and one-off lattices).
    pub fn generate() -> Self {
        let issuer = nkeys::KeyPair::new_cluster();
        let trusted = BTreeSet::from([issuer.public_key()]);
        Credentials {
            issuer: Arc::new(issuer),
            trusted,
        }
    }

    /// The issuer's public key.
    pub fn issuer(&self) -> String {
        self.issuer.public_key()
    }

    /// The issuer's seed, to hand to a process this one starts (never put it in argv).
    pub fn issuer_seed(&self) -> Result<String, LatticeError> {
        self.issuer
            .seed()
            .map_err(|e| LatticeError::Membership(e.to_string()))
    }

    /// The issuers trusted.
    pub fn trusted(&self) -> impl Iterator<Item = &str> {
        self.trusted.iter().map(String::as_str)
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The last [`REPLAY_WINDOW`] sequence numbers of one sender.
struct Window {
    highest: u64,
    /// Bit `i` set: `highest - i` was seen.
    seen: [u64; (REPLAY_WINDOW / 64) as usize],
}

impl Window {
    /// Records `seq`; `false` if it was seen, or is too old to tell.
    fn accept(&mut self, seq: u64) -> bool {
        if seq > self.highest {
            let shift = seq - self.highest;
            if shift >= REPLAY_WINDOW {
                self.seen = [0; (REPLAY_WINDOW / 64) as usize];
            } else {
                shift_left(&mut self.seen, shift);
            }
            self.highest = seq;
            if let Some(first) = self.seen.first_mut() {
                *first |= 1;
            }
            return true;
        }
        let back = self.highest - seq;
        if back >= REPLAY_WINDOW {
            return false;
        }
        let (word, bit) = ((back / 64) as usize, back % 64);
        let Some(word) = self.seen.get_mut(word) else {
            return false;
        };
        if *word & (1 << bit) != 0 {
            return false;
        }
        *word |= 1 << bit;
        true
    }
}

/// Shifts the bit set `words` (bit 0 of word 0 lowest) up by `by` bits, `by` < its size, in
/// place: from the highest word down, each reads only lower words, not yet shifted.
fn shift_left(words: &mut [u64], by: u64) {
    let (whole, part) = ((by / 64) as usize, (by % 64) as u32);
    for i in (0..words.len()).rev() {
        let from = i.checked_sub(whole);
        let high = from.and_then(|f| words.get(f)).copied().unwrap_or(0);
        let low = from
            .and_then(|f| f.checked_sub(1))
            .and_then(|f| words.get(f))
            .copied()
            .unwrap_or(0);
        if let Some(word) = words.get_mut(i) {
            *word = if part == 0 {
                high
            } else {
                (high << part) | (low >> (64 - part))
            };
        }
    }
}

/// A member this one has heard from: its key, its name, the sequence numbers it sent.
struct Peer {
    key: hmac::Key,
    name: String,
    window: Mutex<Window>,
}

/// What answers a key request: the member's token, and its key sealed to the asker.
#[derive(Serialize, Deserialize)]
struct KeyAnswer {
    #[serde(with = "serde_bytes")]
    token: Vec<u8>,
    #[serde(with = "serde_bytes")]
    sealed: Vec<u8>,
}

/// A lattice member's own keys, shared with the task that answers key requests.
struct Own {
    id: String,
    name: String,
    xkey: nkeys::XKey,
    token: Vec<u8>,
    secret: [u8; 32],
    trusted: BTreeSet<String>,
}

type PeerCell = Arc<OnceCell<Option<Arc<Peer>>>>;

/// This process's membership of a lattice: its NATS client, its keys, and the keys of the
/// members it has heard from. Shared (`Arc`) by everything that sends or receives.
pub struct Member {
    client: async_nats::Client,
    lattice: String,
    subjects: Subjects,
    own: Arc<Own>,
    key: hmac::Key,
    seq: AtomicU64,
    peers: Mutex<HashMap<String, PeerCell>>,
    fetching: Semaphore,
    reassembling: Arc<Semaphore>,
    refusals: AtomicU64,
    /// Refusals by reason ([`Refusal::reason`]).
    refused_by_reason: [AtomicU64; 7],
    sealed: AtomicU64,
    opened: AtomicU64,
    logged_at_ms: AtomicU64,
    unlogged: AtomicU64,
    /// Requests waiting for a sealed answer on `inbox.{token}` (see [`Member::ask`]).
    inbox: String,
    asking: Mutex<HashMap<u64, oneshot::Sender<async_nats::Message>>>,
    next_token: AtomicU64,
    tasks: [tokio::task::AbortHandle; 2],
}

impl Drop for Member {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Why [`Member::ask`] got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unanswered {
    /// Nothing subscribes to the subject (the server said so at once).
    NoResponders,
    /// No sealed answer within the deadline.
    TimedOut,
    /// The request could not be sent.
    Failed(String),
}

/// Forgets a request's entry however its asker stops waiting.
struct Forget<'a> {
    member: &'a Member,
    token: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.member
            .asking
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.token);
    }
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member")
            .field("id", &self.own.id)
            .field("name", &self.own.name)
            .finish()
    }
}

impl Member {
    /// Joins lattice `lattice` over `client` as `name` (for logs), with a token `credentials`
    /// sign; returns once other members can ask it for its key.
    pub async fn join(
        client: async_nats::Client,
        lattice: &str,
        name: &str,
        credentials: &Credentials,
    ) -> Result<Arc<Self>, LatticeError> {
        let xkey = nkeys::XKey::new();
        let id = xkey.public_key();
        let token = Token::mint(&credentials.issuer, &id, name)
            .and_then(|t| rmp_serde::to_vec(&t).map_err(|e| Refusal::Token(e.to_string())))
            .map_err(|e| LatticeError::Membership(e.to_string()))?;
        let secret: [u8; 32] = rand::random();
        let own = Arc::new(Own {
            id: id.clone(),
            name: name.to_string(),
            xkey,
            token,
            secret,
            trusted: credentials.trusted.clone(),
        });
        let subjects = Subjects::new(lattice);
        let subject = subjects.member_key(&id);
        let requests =
            client
                .subscribe(subject.clone())
                .await
                .map_err(|e| LatticeError::Subscribe {
                    subject: subject.clone(),
                    reason: e.to_string(),
                })?;
        let inbox = client.new_inbox();
        let answers =
            client
                .subscribe(format!("{inbox}.*"))
                .await
                .map_err(|e| LatticeError::Subscribe {
                    subject: format!("{inbox}.*"),
                    reason: e.to_string(),
                })?;
        let key = hmac::Key::new(hmac::HMAC_SHA256, &secret);
        let me: PeerCell = Arc::new(OnceCell::new_with(Some(Some(Arc::new(Peer {
            key: key.clone(),
            name: name.to_string(),
            window: Mutex::new(Window {
                highest: 0,
                seen: [0; (REPLAY_WINDOW / 64) as usize],
            }),
        })))));
        let member = Arc::new_cyclic(|me_weak: &std::sync::Weak<Member>| {
            let serving = tokio::spawn(serve_keys(client.clone(), own.clone(), requests));
            let dispatching = tokio::spawn(dispatch_answers(me_weak.clone(), answers));
            Member {
                client,
                lattice: lattice.to_string(),
                subjects,
                own,
                key,
                seq: AtomicU64::new(1),
                peers: Mutex::new(HashMap::from([(id, me)])),
                fetching: Semaphore::new(FETCHES_AT_ONCE),
                reassembling: Arc::new(Semaphore::new(REASSEMBLIES_AT_ONCE)),
                refusals: AtomicU64::new(0),
                refused_by_reason: Default::default(),
                sealed: AtomicU64::new(0),
                opened: AtomicU64::new(0),
                logged_at_ms: AtomicU64::new(0),
                unlogged: AtomicU64::new(0),
                inbox,
                asking: Mutex::new(HashMap::new()),
                next_token: AtomicU64::new(1),
                tasks: [serving.abort_handle(), dispatching.abort_handle()],
            }
        });
        crate::round_trip(&member.client, FETCH_WITHIN).await?;
        Ok(member)
    }

    /// The NATS client.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// The lattice's name.
    pub fn lattice(&self) -> &str {
        &self.lattice
    }

    /// The lattice's subjects.
    pub fn subjects(&self) -> &Subjects {
        &self.subjects
    }

    /// This member's id (`X…`).
    pub fn id(&self) -> &str {
        &self.own.id
    }

    /// How many messages this member has refused.
    pub fn refusals(&self) -> u64 {
        self.refusals.load(Ordering::Relaxed)
    }

    /// What it sent and received so far.
    pub fn traffic(&self) -> Traffic {
        Traffic {
            sent: self.sealed.load(Ordering::Relaxed),
            received: self.opened.load(Ordering::Relaxed),
            refused: std::array::from_fn(|at| {
                self.refused_by_reason
                    .get(at)
                    .map_or(0, |count| count.load(Ordering::Relaxed))
            }),
        }
    }

    /// The seal headers for `body` sent on `subject`, added to `headers`.
    pub fn seal(&self, subject: &str, body: &[u8], headers: &mut async_nats::HeaderMap) {
        self.sealed.fetch_add(1, Ordering::Relaxed);
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let at = now_ms();
        let tag = tag(&self.key, subject, seq, at, body);
        headers.insert(FROM_HEADER, self.own.id.as_str());
        headers.insert(
            SEAL_HEADER,
            format!(
                "{seq}.{at}.{}",
                data_encoding::BASE64URL_NOPAD.encode(tag.as_ref())
            )
            .as_str(),
        );
    }

    /// Who sealed `body`, received on `subject` with `headers`, if a member did, for this
    /// subject, recently, once. A refusal is counted and logged here; the caller drops the
    /// message.
    pub async fn open(
        &self,
        subject: &str,
        headers: Option<&async_nats::HeaderMap>,
        body: &[u8],
    ) -> Result<String, Refusal> {
        let opened = self.check(subject, headers, body).await;
        match &opened {
            Ok(_) => {
                self.opened.fetch_add(1, Ordering::Relaxed);
            }
            Err(refusal) => self.refused(subject, refusal),
        }
        opened
    }

    async fn check(
        &self,
        subject: &str,
        headers: Option<&async_nats::HeaderMap>,
        body: &[u8],
    ) -> Result<String, Refusal> {
        let (Some(from), Some(seal)) = (
            headers.and_then(|h| h.get(FROM_HEADER)),
            headers.and_then(|h| h.get(SEAL_HEADER)),
        ) else {
            return Err(Refusal::Unsealed);
        };
        let (from, seal) = (from.as_str(), seal.as_str());
        let (seq, at, given) = parse_seal(seal)?;
        let skew_ms = now_ms().abs_diff(at);
        if u128::from(skew_ms) > WINDOW.as_millis() {
            return Err(Refusal::Stale { skew_ms });
        }
        let peer = self.peer(from).await?;
        let expected = tag(&peer.key, subject, seq, at, body);
        if !same(expected.as_ref(), &given) {
            return Err(Refusal::BadSeal {
                from: from.to_string(),
            });
        }
        if !peer
            .window
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .accept(seq)
        {
            return Err(Refusal::Replayed {
                from: from.to_string(),
                seq,
            });
        }
        Ok(peer.name.clone())
    }

    /// A slot to reassemble one chunked body in, if fewer than [`REASSEMBLIES_AT_ONCE`] are
    /// being reassembled; held until dropped.
    pub fn reassembly(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.reassembling.clone().try_acquire_owned().ok()
    }

    /// Whether opening a message with `headers` may wait on a key request (it names a sender
    /// whose key this member does not hold yet). A receiver that opens many senders' messages
    /// in one task opens such a message in a task of its own, so that a stranger naming
    /// made-up senders cannot hold up everyone else's answers.
    pub fn may_wait(&self, headers: Option<&async_nats::HeaderMap>) -> bool {
        let Some(from) = headers.and_then(|h| h.get(FROM_HEADER)) else {
            return false;
        };
        !self
            .peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(from.as_str())
            .is_some_and(|cell| matches!(cell.get(), Some(Some(_))))
    }

    /// The member `from`, its key asked for at first contact (one request at a time per
    /// member however many of its messages wait).
    async fn peer(&self, from: &str) -> Result<Arc<Peer>, Refusal> {
        let not_member = |reason: String| Refusal::NotMember {
            from: from.to_string(),
            reason,
        };
        let cell = {
            let mut peers = self.peers.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(cell) = peers.get(from) {
                cell.clone()
            } else {
                if peers.len() >= MAX_PEERS {
                    peers.retain(|_, cell| !matches!(cell.get(), Some(None)));
                }
                if peers.len() >= MAX_PEERS {
                    return Err(not_member(format!(
                        "this member already holds the keys of {MAX_PEERS} members"
                    )));
                }
                if from.len() > 64 || !from.starts_with('X') {
                    return Err(not_member("not a member id (X…)".into()));
                }
                let cell = PeerCell::default();
                peers.insert(from.to_string(), cell.clone());
                cell
            }
        };
        let fetched = cell
            .get_or_init(|| async {
                match self.fetch(from).await {
                    Ok(peer) => Some(Arc::new(peer)),
                    Err(reason) => {
                        tracing::debug!(%from, %reason, "no key for a sender");
                        None
                    }
                }
            })
            .await;
        match fetched {
            Some(peer) => Ok(peer.clone()),
            None => {
                // Forgotten, so that a member that was briefly unreachable is asked again.
                self.peers
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(from);
                Err(not_member(
                    "it did not answer a key request with a token this member trusts".into(),
                ))
            }
        }
    }

    /// Asks member `from` for its key.
    async fn fetch(&self, from: &str) -> Result<Peer, String> {
        let _permit = self
            .fetching
            .try_acquire()
            .map_err(|_| format!("{FETCHES_AT_ONCE} key requests already in flight"))?;
        let subject = self.subjects.member_key(from);
        let answer = tokio::time::timeout(
            FETCH_WITHIN,
            self.client
                .request(subject.clone(), self.own.token.clone().into()),
        )
        .await
        .map_err(|_| format!("no answer on {subject}"))?
        .map_err(|e| format!("request on {subject}: {e}"))?;
        if answer.payload.len() > MAX_KEY_MESSAGE_BYTES {
            return Err(format!("a key answer of {} bytes", answer.payload.len()));
        }
        let answer: KeyAnswer = rmp_serde::from_slice(&answer.payload)
            .map_err(|e| format!("malformed key answer: {e}"))?;
        let claims = Token::verify(&answer.token, &self.own.trusted).map_err(|e| e.to_string())?;
        if claims.member != from {
            return Err(format!("answered with the token of {}", claims.member));
        }
        let sender = nkeys::XKey::from_public_key(from).map_err(|e| e.to_string())?;
        let secret = self
            .own
            .xkey
            .open(&answer.sealed, &sender)
            .map_err(|e| format!("the sealed key does not open: {e}"))?;
        if secret.len() != 32 {
            return Err("a key of the wrong length".into());
        }
        tracing::debug!(member = %from, name = %claims.name, "learned a member's key");
        Ok(Peer {
            key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
            name: claims.name,
            window: Mutex::new(Window {
                highest: 0,
                seen: [0; (REPLAY_WINDOW / 64) as usize],
            }),
        })
    }

    /// Sends `payload` (sealed into `headers` by the caller) to `subject` and waits up to
    /// `deadline` for the first answer a member sealed: an answer no member sealed (a
    /// stranger answering first) is dropped, and the real one still counts. A chunked answer
    /// is handed out as it came, for [`crate::chunks::receive`] to pull and open; any other
    /// was opened here already.
    pub async fn ask(
        &self,
        subject: &str,
        headers: async_nats::HeaderMap,
        payload: bytes::Bytes,
        deadline: Duration,
    ) -> Result<async_nats::Message, Unanswered> {
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        let (answer, answered) = oneshot::channel();
        self.asking
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(token, answer);
        let _forget = Forget {
            member: self,
            token,
        };
        let reply = format!("{}.{token}", self.inbox);
        let ask = async {
            self.client
                .publish_with_reply_and_headers(subject.to_string(), reply, headers, payload)
                .await
                .map_err(|e| Unanswered::Failed(e.to_string()))?;
            answered
                .await
                .map_err(|_| Unanswered::Failed("the lattice connection closed".into()))
        };
        let message = tokio::time::timeout(deadline, ask)
            .await
            .map_err(|_| Unanswered::TimedOut)??;
        if message.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
            return Err(Unanswered::NoResponders);
        }
        Ok(message)
    }

    /// Gives the answer `message` to the request waiting on `token`, if it still waits.
    fn hand_over(&self, token: u64, message: async_nats::Message) {
        let waiting = self
            .asking
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&token);
        if let Some(waiting) = waiting {
            let _ = waiting.send(message);
        }
    }

    /// Counts a refusal and logs it, at most once a second (with how many went unlogged).
    fn refused(&self, subject: &str, refusal: &Refusal) {
        self.refusals.fetch_add(1, Ordering::Relaxed);
        if let Some(count) = self.refused_by_reason.get(refusal.reason()) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        let now = now_ms();
        let last = self.logged_at_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) < 1000
            || self
                .logged_at_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            self.unlogged.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let unlogged = self.unlogged.swap(0, Ordering::Relaxed);
        tracing::warn!(%subject, %refusal, also_refused_since_last_log = unlogged, "dropped a lattice message");
    }
}

/// The tag of a seal: over the subject (so a message cannot be redirected), the sequence
/// number, the time and the body.
fn tag(key: &hmac::Key, subject: &str, seq: u64, at: u64, body: &[u8]) -> hmac::Tag {
    let mut context = hmac::Context::with_key(key);
    context.update(subject.as_bytes());
    context.update(&[0]);
    context.update(&seq.to_le_bytes());
    context.update(&at.to_le_bytes());
    context.update(body);
    context.sign()
}

/// A `Weft-Seal` header's parts: sequence number, time (ms) and tag.
pub(crate) fn parse_seal(seal: &str) -> Result<(u64, u64, Vec<u8>), Refusal> {
    let malformed = || Refusal::Malformed(format!("{SEAL_HEADER}: {seal:?}"));
    let mut parts = seal.splitn(3, '.');
    let (Some(seq), Some(at), Some(given)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(malformed());
    };
    let (Ok(seq), Ok(at), Ok(given)) = (
        seq.parse::<u64>(),
        at.parse::<u64>(),
        data_encoding::BASE64URL_NOPAD.decode(given.as_bytes()),
    ) else {
        return Err(malformed());
    };
    Ok((seq, at, given))
}

/// Hands each answer on the member's inbox to the request waiting for it, once a member
/// sealed it (a chunked one is opened by its receiver; the server's own status messages,
/// "no responders", carry no seal).
async fn dispatch_answers(member: std::sync::Weak<Member>, mut answers: async_nats::Subscriber) {
    use futures_util::StreamExt;
    while let Some(message) = answers.next().await {
        let Some(member) = member.upgrade() else {
            return;
        };
        let Some(token) = message
            .subject
            .rsplit('.')
            .next()
            .and_then(|t| t.parse::<u64>().ok())
        else {
            continue;
        };
        let chunked = message
            .headers
            .as_ref()
            .is_some_and(|h| h.get(crate::chunks::CHUNKED_HEADER).is_some());
        if message.status.is_some() || chunked {
            member.hand_over(token, message);
        } else if member.may_wait(message.headers.as_ref()) {
            tokio::spawn(async move {
                if member
                    .open(&message.subject, message.headers.as_ref(), &message.payload)
                    .await
                    .is_ok()
                {
                    member.hand_over(token, message);
                }
            });
        } else if member
            .open(&message.subject, message.headers.as_ref(), &message.payload)
            .await
            .is_ok()
        {
            member.hand_over(token, message);
        }
    }
}

/// Compares in time that does not depend on where the two differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Answers key requests: a member's token in, this member's token and key sealed to it out.
async fn serve_keys(
    client: async_nats::Client,
    own: Arc<Own>,
    mut requests: async_nats::Subscriber,
) {
    use futures_util::StreamExt;
    // Answers by token: a member asks again with the same token, and a replayed token (they
    // travel in the clear) costs a lookup, not a signature check and a key exchange.
    let mut answered: HashMap<bytes::Bytes, bytes::Bytes> = HashMap::new();
    let (mut refused, mut logged_at) = (0u64, 0u64);
    while let Some(request) = requests.next().await {
        let Some(reply) = request.reply.clone() else {
            continue;
        };
        if let Some(answer) = answered.get(&request.payload) {
            let _ = client.publish(reply, answer.clone()).await;
            continue;
        }
        let answer = Token::verify(&request.payload, &own.trusted).and_then(|claims| {
            let asker = nkeys::XKey::from_public_key(&claims.member)
                .map_err(|e| Refusal::Token(e.to_string()))?;
            let sealed = own
                .xkey
                .seal(&own.secret, &asker)
                .map_err(|e| Refusal::Token(e.to_string()))?;
            rmp_serde::to_vec(&KeyAnswer {
                token: own.token.clone(),
                sealed,
            })
            .map_err(|e| Refusal::Token(e.to_string()))
        });
        match answer {
            Ok(answer) => {
                let answer = bytes::Bytes::from(answer);
                if answered.len() >= MAX_PEERS {
                    answered.clear();
                }
                // A copy: the payload is a slice of the connection's read buffer, and
                // keeping it would keep the whole buffer (after a large message, hundreds of
                // kilobytes) alive for as long as the cache holds the entry.
                answered.insert(
                    bytes::Bytes::copy_from_slice(&request.payload),
                    answer.clone(),
                );
                let _ = client.publish(reply, answer).await;
            }
            Err(refusal) => {
                // Logged at most once a second, with how many went unlogged.
                refused += 1;
                let now = now_ms();
                if now.saturating_sub(logged_at) >= 1000 {
                    tracing::warn!(%refusal, refused, "refused key requests from non-members");
                    (refused, logged_at) = (0, now);
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_window_takes_each_sequence_number_once_and_forgets_the_old() {
        let mut window = Window {
            highest: 0,
            seen: [0; (REPLAY_WINDOW / 64) as usize],
        };
        assert!(window.accept(1));
        assert!(!window.accept(1));
        assert!(window.accept(3));
        assert!(window.accept(2), "out of order within the window");
        assert!(!window.accept(2));
        assert!(window.accept(200));
        assert!(window.accept(70), "65+ back, across words");
        assert!(!window.accept(70));
        assert!(!window.accept(3), "still remembered after the shift");
        assert!(window.accept(200 + REPLAY_WINDOW));
        assert!(!window.accept(150), "older than the window: refused");
        assert!(window.accept(201 + REPLAY_WINDOW));
        assert!(!window.accept(200 + REPLAY_WINDOW));
    }

    #[test]
    fn a_token_verifies_only_under_a_trusted_issuer_and_unaltered() {
        let issuer = nkeys::KeyPair::new_cluster();
        let stranger = nkeys::KeyPair::new_cluster();
        let trusted = BTreeSet::from([issuer.public_key()]);
        let token = rmp_serde::to_vec(&Token::mint(&issuer, "XMEMBER", "host").unwrap()).unwrap();
        assert_eq!(Token::verify(&token, &trusted).unwrap().member, "XMEMBER");
        let foreign =
            rmp_serde::to_vec(&Token::mint(&stranger, "XMEMBER", "host").unwrap()).unwrap();
        assert!(Token::verify(&foreign, &trusted).is_err());
        // Claims swapped under the trusted issuer's signature.
        let mut forged = Token::mint(&issuer, "XMEMBER", "host").unwrap();
        forged.claims = rmp_serde::to_vec_named(&Claims {
            member: "XROGUE".into(),
            name: "host".into(),
            issuer: issuer.public_key(),
            issued_ms: 0,
        })
        .unwrap();
        assert!(Token::verify(&rmp_serde::to_vec(&forged).unwrap(), &trusted).is_err());
        assert!(Token::verify(b"garbage", &trusted).is_err());
    }
}
