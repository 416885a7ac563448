//! Per-session ordering and queue modes: the turns of one session key run
//! one at a time, in the order `enter` was called; different keys run in
//! parallel. A message that finds its session busy does what its
//! [`QueueSettings`] say (core's `queue_mode` resolves them): `steer` offers
//! it to the running turn, which takes it at its next model or tool boundary
//! (if the turn ends first, the message keeps its place and runs next);
//! `followup` waits; `collect` joins the batch of the message waiting before
//! it (one turn answers them all); `interrupt` aborts the running turn. A
//! waiting turn starts once the session has been quiet for the debounce. At
//! the cap, the drop policy decides: the newest is refused, or the oldest
//! waiting messages give way (summarised for the next turn, or not).
//!
//! Must not: run turns itself, resolve settings (core does) or queue
//! without bound.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chela_core::queue_mode::{summary_line, Collected, DropPolicy, QueueMode, QueueSettings};
use tokio::sync::{oneshot, watch};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("session `{key}` already has {queued} messages waiting (messages.queue.cap {limit}, drop \"new\"); this one was not accepted")]
pub struct QueueFull {
    pub key: String,
    pub queued: usize,
    pub limit: usize,
}

/// A message as the queue sees it.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub text: String,
    pub sender: Option<String>,
    /// The chat its reply goes to: only messages of one chat are collected together.
    pub chat: String,
    /// The platform message it is (a steered message is stored with it).
    pub message_ref: Option<String>,
    /// The tool rights its turn is linked with: a message is steered into
    /// a turn, or collected into a batch, only with the same ones.
    pub rights: ToolRights,
}

/// The message-dependent part of a turn's tool linking: whether its sender
/// may hold elevated tools (`tools.elevated`) and the stricter exec rules it
/// asked for itself (`/exec security=… ask=…`). A message never borrows
/// another sender's rights, nor escapes or imposes another message's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ToolRights {
    pub elevated: bool,
    pub exec: chela_core::policy::Tightening,
}

/// Why a message got no turn of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Absorbed {
    /// The running turn took it at a boundary and answered it.
    Steered,
    /// It joined an earlier waiting message's batch (one turn answers both).
    Collected,
    /// The queue was full and it was the oldest waiting (`drop: old|summarize`).
    DroppedByCap { summarized: bool },
    /// `/stop` cleared the queue.
    Stopped,
}

/// How a place in line ends.
pub enum Admit {
    Turn(TurnPermit),
    /// With, when another turn takes the message's text (a summary), what
    /// tells that it is stored: until then the message is not done.
    Absorbed(Absorbed, Option<oneshot::Receiver<()>>),
}

/// A message offered to the running turn, with what tells its sender it was taken.
struct Offer {
    text: String,
    message_ref: Option<String>,
    taken: oneshot::Sender<()>,
}

/// A steered message the running turn took: its text and platform message.
pub struct Taken {
    pub text: String,
    pub message_ref: Option<String>,
    taken: oneshot::Sender<()>,
}

impl Taken {
    /// The turn has stored it: its sender is done.
    pub fn stored(self) {
        let _ = self.taken.send(());
    }
}

/// The running turn's inbox for steered messages. Closed (no offers) until
/// the turn reaches its model rounds and after it ends: an offer then stays
/// a followup.
#[derive(Default)]
pub struct Steering {
    state: Mutex<(bool, Vec<Offer>)>,
}

impl Steering {
    fn offer(&self, a: &Arrival) -> Option<oneshot::Receiver<()>> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if !s.0 {
            return None;
        }
        let (taken, rx) = oneshot::channel();
        s.1.push(Offer { text: a.text.clone(), message_ref: a.message_ref.clone(), taken });
        Some(rx)
    }

    /// The turn accepts offers from now on.
    pub fn open(&self) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).0 = true;
    }

    /// Whether a message is waiting to be taken.
    pub fn pending(&self) -> bool {
        !self.state.lock().unwrap_or_else(|p| p.into_inner()).1.is_empty()
    }

    /// Takes the waiting messages, in arrival order. Each one's sender
    /// learns it was taken when [`Taken::stored`] says so; a taken message
    /// dropped unstored goes back to its place in line.
    pub fn take(&self) -> Vec<Taken> {
        let offers = std::mem::take(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()).1);
        offers.into_iter().map(|o| Taken { text: o.text, message_ref: o.message_ref, taken: o.taken }).collect()
    }

    /// No more offers; those not taken stay followups.
    fn close(&self) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.0 = false;
        s.1.clear();
    }
}

/// Messages collected into one waiting turn, and what tells each of them
/// that the turn has stored their text.
#[derive(Default)]
struct Batch {
    closed: bool,
    items: Vec<Collected>,
    stored: Vec<oneshot::Sender<()>>,
}

struct Running {
    /// The tool rights the turn was linked with (see [`Arrival::rights`]).
    rights: ToolRights,
    steering: Arc<Steering>,
    abort: watch::Sender<Option<&'static str>>,
    /// The batch this turn is still gathering (during its debounce).
    batch: Option<(String, Arc<Mutex<Batch>>)>,
}

struct Waiter {
    tx: oneshot::Sender<Admit>,
    summary: String,
    chat: String,
    rights: ToolRights,
    batch: Option<Arc<Mutex<Batch>>>,
}

#[derive(Default)]
struct Lane {
    running: Option<Running>,
    waiting: VecDeque<Waiter>,
    /// Messages the cap dropped since the last turn started, their
    /// summaries, and what tells them the summary is stored.
    dropped: usize,
    summaries: Vec<String>,
    summarized: Vec<oneshot::Sender<()>>,
    last_arrival: Option<Instant>,
}

type Lanes = Arc<Mutex<HashMap<String, Lane>>>;

#[derive(Default)]
pub struct SessionQueues {
    lanes: Lanes,
}

/// The longest a queued turn waits for its session to be quiet is ten
/// debounces, and at least this.
const MAX_QUIET_WAIT_FLOOR: std::time::Duration = std::time::Duration::from_secs(5);

/// Holding this is holding the key's turn; dropping it hands the turn to the
/// next waiter in line.
pub struct TurnPermit {
    key: String,
    lanes: Lanes,
    armed: bool,
    steering: Arc<Steering>,
    abort: watch::Receiver<Option<&'static str>>,
    /// Collected messages this turn answers (its own first), when it gathered any.
    batch: Option<Arc<Mutex<Batch>>>,
    /// The session was busy when this message came: it waits for the quiet window.
    queued: bool,
    /// Told once this turn has stored the messages it took over (collected, summarized).
    stored: Mutex<Vec<oneshot::Sender<()>>>,
}

/// A place in line, as `enter` gives it.
pub enum Entered {
    /// Wait for the turn (or for being absorbed).
    Wait(oneshot::Receiver<Admit>),
    /// Offered to the running turn; if it ends without taking it, the
    /// place in line is used.
    Offered { taken: oneshot::Receiver<()>, place: oneshot::Receiver<Admit> },
    /// The turn is this caller's now.
    Now(TurnPermit),
    /// Joined a waiting message's batch: resolves once the batch's turn has
    /// stored it (an error: that turn ended first).
    Collected(oneshot::Receiver<()>),
}

fn lock(lanes: &Lanes) -> std::sync::MutexGuard<'_, HashMap<String, Lane>> {
    lanes.lock().unwrap_or_else(|p| p.into_inner())
}

impl SessionQueues {
    pub fn new() -> SessionQueues {
        SessionQueues::default()
    }

    /// Takes a place in `key`'s line now, as `settings` say for a busy session.
    pub fn enter(&self, key: &str, settings: &QueueSettings, arrival: &Arrival) -> Result<Entered, QueueFull> {
        let mut lanes = lock(&self.lanes);
        let lane = lanes.entry(key.to_string()).or_default();
        lane.last_arrival = Some(Instant::now());
        let Some(running) = &lane.running else {
            return Ok(Entered::Now(permit_for(&self.lanes, key, lane, None, false, arrival.rights)));
        };
        if settings.mode == QueueMode::Collect {
            let same_chat = |chat: &str| chat == arrival.chat;
            let open = match lane.waiting.iter().rev().find(|w| same_chat(&w.chat)) {
                Some(w) => w.batch.clone().filter(|_| w.rights == arrival.rights),
                None => running
                    .batch
                    .as_ref()
                    .filter(|(c, _)| same_chat(c) && running.rights == arrival.rights)
                    .map(|(_, b)| b.clone()),
            };
            if let Some(batch) = open {
                let mut b = batch.lock().unwrap_or_else(|p| p.into_inner());
                if !b.closed {
                    b.items.push(Collected { sender: arrival.sender.clone(), text: arrival.text.clone() });
                    let (tx, rx) = oneshot::channel();
                    b.stored.push(tx);
                    return Ok(Entered::Collected(rx));
                }
            }
        }
        if settings.mode == QueueMode::Interrupt {
            let _ = running.abort.send(Some("interrupted by a newer message (queue mode interrupt)"));
        }
        if lane.waiting.len() >= settings.cap {
            if settings.drop == DropPolicy::New {
                return Err(QueueFull { key: key.to_string(), queued: lane.waiting.len(), limit: settings.cap });
            }
            let summarized = settings.drop == DropPolicy::Summarize;
            while lane.waiting.len() >= settings.cap {
                let Some(oldest) = lane.waiting.pop_front() else { break };
                lane.dropped += 1;
                let stored = summarized.then(|| {
                    lane.summaries.push(oldest.summary.clone());
                    let (tx, rx) = oneshot::channel();
                    lane.summarized.push(tx);
                    rx
                });
                let _ = oldest.tx.send(Admit::Absorbed(Absorbed::DroppedByCap { summarized }, stored));
            }
        }
        let steering = lane.running.as_ref().filter(|r| r.rights == arrival.rights).map(|r| r.steering.clone());
        let (tx, rx) = oneshot::channel();
        let batch = (settings.mode == QueueMode::Collect).then(|| {
            let first = Collected { sender: arrival.sender.clone(), text: arrival.text.clone() };
            Arc::new(Mutex::new(Batch { closed: false, items: vec![first], stored: Vec::new() }))
        });
        let summary = summary_line(&arrival.text);
        lane.waiting.push_back(Waiter { tx, summary, chat: arrival.chat.clone(), rights: arrival.rights, batch });
        if settings.mode == QueueMode::Steer {
            if let Some(taken) = steering.and_then(|s| s.offer(arrival)) {
                return Ok(Entered::Offered { taken, place: rx });
            }
        }
        Ok(Entered::Wait(rx))
    }

    /// Aborts `key`'s running turn and clears its waiting messages (`/stop`):
    /// whether a turn was running, and how many waited.
    pub fn stop(&self, key: &str) -> (bool, usize) {
        let mut lanes = lock(&self.lanes);
        let Some(lane) = lanes.get_mut(key) else { return (false, 0) };
        let running = lane.running.as_ref().is_some_and(|r| r.abort.send(Some("stopped by /stop")).is_ok());
        let waiting = lane.waiting.len();
        for w in lane.waiting.drain(..) {
            let _ = w.tx.send(Admit::Absorbed(Absorbed::Stopped, None));
        }
        lane.dropped = 0;
        lane.summaries.clear();
        lane.summarized.clear();
        (running, waiting)
    }

    /// Messages running or waiting, per key (for metrics and status): the
    /// running turn, the waiting ones, those collected into a waiting batch
    /// and those the cap folded into a summary not stored yet.
    pub fn depths(&self) -> Vec<(String, usize)> {
        let lanes = lock(&self.lanes);
        let extra = |b: &Arc<Mutex<Batch>>| b.lock().unwrap_or_else(|p| p.into_inner()).items.len().saturating_sub(1);
        let mut v: Vec<(String, usize)> = lanes
            .iter()
            .map(|(k, l)| {
                let running = l.running.as_ref().map_or(0, |r| 1 + r.batch.as_ref().map_or(0, |(_, b)| extra(b)));
                let waiting: usize = l.waiting.iter().map(|w| 1 + w.batch.as_ref().map_or(0, extra)).sum();
                (k.clone(), running + waiting + l.summarized.len())
            })
            .collect();
        v.sort();
        v
    }
}

/// The turn of `key` for the next message: `gathering` is its batch, which
/// messages of the same chat may still join until it settles.
fn permit_for(
    lanes: &Lanes,
    key: &str,
    lane: &mut Lane,
    gathering: Option<(String, Arc<Mutex<Batch>>)>,
    queued: bool,
    rights: ToolRights,
) -> TurnPermit {
    let steering = Arc::new(Steering::default());
    let (abort_tx, abort) = watch::channel(None);
    let batch = gathering.as_ref().map(|(_, b)| b.clone());
    lane.running = Some(Running { rights, steering: steering.clone(), abort: abort_tx, batch: gathering });
    TurnPermit {
        key: key.to_string(),
        lanes: lanes.clone(),
        armed: true,
        steering,
        abort,
        batch,
        queued,
        stored: Mutex::default(),
    }
}

impl TurnPermit {
    /// The running turn's steering inbox.
    pub fn steering(&self) -> Arc<Steering> {
        self.steering.clone()
    }

    /// Resolves when the turn is aborted (`/stop`, an `interrupt` message), with why.
    pub fn aborted(&self) -> impl std::future::Future<Output = &'static str> + Send + 'static {
        let mut rx = self.abort.clone();
        async move {
            loop {
                if let Some(why) = *rx.borrow_and_update() {
                    return why;
                }
                if rx.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        }
    }

    /// Waits, if this message was queued, until the session has had no new
    /// message for `debounce` (collected messages keep joining meanwhile);
    /// then the batch closes. Returns the collected messages (this one
    /// first) when more than one gathered, and the overflow summary of
    /// what the cap dropped since the last turn (count and lines).
    pub async fn settle(
        &self,
        debounce: std::time::Duration,
    ) -> (Option<Vec<Collected>>, Option<(usize, Vec<String>)>) {
        if self.queued && !debounce.is_zero() {
            // A session that is never quiet (a busy group) still gets its turn.
            let latest = Instant::now() + (debounce * 10).max(MAX_QUIET_WAIT_FLOOR);
            loop {
                let last = lock(&self.lanes).get(&self.key).and_then(|l| l.last_arrival);
                let Some(quiet_at) = last.map(|t| (t + debounce).min(latest)) else { break };
                if Instant::now() >= quiet_at {
                    break;
                }
                tokio::time::sleep_until(quiet_at.into()).await;
            }
        }
        let mut stored = self.stored.lock().unwrap_or_else(|p| p.into_inner());
        let collected = self.batch.as_ref().and_then(|b| {
            let mut b = b.lock().unwrap_or_else(|p| p.into_inner());
            b.closed = true;
            stored.append(&mut b.stored);
            (b.items.len() > 1).then(|| b.items.clone())
        });
        let mut lanes = lock(&self.lanes);
        let overflow = lanes.get_mut(&self.key).and_then(|l| {
            if let Some(r) = l.running.as_mut() {
                r.batch = None;
            }
            stored.append(&mut l.summarized);
            (l.dropped > 0).then(|| (std::mem::take(&mut l.dropped), std::mem::take(&mut l.summaries)))
        });
        (collected, overflow)
    }

    /// This turn has stored its message: those it took over are done.
    pub fn stored(&self) {
        for tx in self.stored.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
            let _ = tx.send(());
        }
    }
}

impl Drop for TurnPermit {
    fn drop(&mut self) {
        self.steering.close();
        if !self.armed {
            return;
        }
        let mut lanes = lock(&self.lanes);
        let Some(lane) = lanes.get_mut(&self.key) else { return };
        lane.running = None;
        // Hand the turn to the first waiter still waiting.
        while let Some(next) = lane.waiting.pop_front() {
            let gathering = next.batch.clone().map(|b| (next.chat.clone(), b));
            let permit = permit_for(&self.lanes, &self.key, lane, gathering, true, next.rights);
            match next.tx.send(Admit::Turn(permit)) {
                Ok(()) => return,
                Err(unused) => {
                    // That waiter gave up: its permit must not hand over again.
                    if let Admit::Turn(mut p) = unused {
                        p.armed = false;
                    }
                    lane.running = None;
                }
            }
        }
        lanes.remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn settings(mode: QueueMode, cap: usize, drop: DropPolicy) -> QueueSettings {
        QueueSettings { mode, debounce: Duration::ZERO, cap, drop }
    }

    fn arrival(text: &str) -> Arrival {
        Arrival { text: text.into(), sender: None, chat: "c".into(), message_ref: None, rights: ToolRights::default() }
    }

    async fn turn(e: Entered) -> Option<TurnPermit> {
        match e {
            Entered::Now(p) => Some(p),
            Entered::Wait(rx) | Entered::Offered { place: rx, .. } => match rx.await.ok()? {
                Admit::Turn(p) => Some(p),
                Admit::Absorbed(..) => None,
            },
            Entered::Collected(_) => None,
        }
    }

    #[tokio::test]
    async fn one_key_runs_in_order_other_keys_in_parallel() {
        let q = Arc::new(SessionQueues::new());
        let s = settings(QueueMode::Followup, 10, DropPolicy::New);
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..5 {
            let place = q.enter("a", &s, &arrival("x")).unwrap();
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                let _p = turn(place).await.unwrap();
                log.lock().unwrap().push(format!("a{i}-start"));
                tokio::time::sleep(Duration::from_millis(5 - i)).await;
                log.lock().unwrap().push(format!("a{i}-end"));
            }));
        }
        assert!(matches!(q.enter("b", &s, &arrival("y")).unwrap(), Entered::Now(_)), "b is not held up by a");
        for t in tasks {
            t.await.unwrap();
        }
        let log = log.lock().unwrap().clone();
        let expected: Vec<String> = (0..5).flat_map(|i| [format!("a{i}-start"), format!("a{i}-end")]).collect();
        assert_eq!(log, expected);
        assert!(q.depths().is_empty(), "idle lanes are removed: {:?}", q.depths());
    }

    #[tokio::test]
    async fn at_the_cap_new_is_refused_and_old_gives_way_with_a_summary() {
        let q = SessionQueues::new();
        let first =
            turn(q.enter("k", &settings(QueueMode::Followup, 2, DropPolicy::New), &arrival("1")).unwrap()).await;
        let s = settings(QueueMode::Followup, 2, DropPolicy::New);
        let _two = q.enter("k", &s, &arrival("2")).unwrap();
        let _three = q.enter("k", &s, &arrival("3")).unwrap();
        let err = q.enter("k", &s, &arrival("4")).err().expect("refused at the cap");
        assert_eq!((err.queued, err.limit), (2, 2));
        let s = settings(QueueMode::Followup, 2, DropPolicy::Summarize);
        let Entered::Wait(two) = _two else { panic!("a followup waits") };
        let _four = q.enter("k", &s, &arrival("four   is\nlong")).unwrap();
        let Ok(Admit::Absorbed(Absorbed::DroppedByCap { summarized: true }, Some(summary_stored))) = two.await else {
            panic!("2 gives way, summarized")
        };
        drop(first);
        let next = turn(_three).await.expect("3 runs next");
        let (_, overflow) = next.settle(Duration::ZERO).await;
        assert_eq!(overflow, Some((1, vec!["2".to_string()])));
        next.stored();
        assert!(summary_stored.await.is_ok(), "2 is done once the summary is stored");
    }

    #[tokio::test]
    async fn steer_offers_to_the_open_turn_and_falls_back_to_its_place() {
        let q = SessionQueues::new();
        let s = settings(QueueMode::Steer, 5, DropPolicy::New);
        let running = turn(q.enter("k", &s, &arrival("first")).unwrap()).await.unwrap();
        // Not yet in its rounds: a plain followup.
        assert!(matches!(q.enter("k", &s, &arrival("early")).unwrap(), Entered::Wait(_)));
        running.steering().open();
        let Entered::Offered { taken, .. } = q.enter("k", &s, &arrival("steer me")).unwrap() else {
            panic!("offered to the open turn")
        };
        assert!(running.steering().pending());
        let took = running.steering().take();
        assert_eq!(took.iter().map(|t| t.text.as_str()).collect::<Vec<_>>(), ["steer me"]);
        took.into_iter().for_each(Taken::stored);
        assert!(taken.await.is_ok(), "its sender learns it was taken once stored");
        // A sender with other tool rights is never steered in: it waits its own turn.
        let elevated =
            Arrival { rights: ToolRights { elevated: true, ..ToolRights::default() }, ..arrival("with more rights") };
        assert!(matches!(q.enter("k", &s, &elevated).unwrap(), Entered::Wait(_)));
        // Nor a message with its own exec rules (`/exec security=deny <task>`).
        let strict = chela_core::policy::Tightening { security: Some(chela_core::policy::Security::Deny), ask: None };
        let ruled = Arrival { rights: ToolRights { exec: strict, ..ToolRights::default() }, ..arrival("no exec here") };
        assert!(matches!(q.enter("k", &s, &ruled).unwrap(), Entered::Wait(_)));
        let Entered::Offered { taken, place } = q.enter("k", &s, &arrival("late")).unwrap() else { panic!() };
        drop(running);
        assert!(taken.await.is_err(), "the turn ended without it");
        assert!(matches!(place.await, Ok(Admit::Turn(_)) | Err(_)));
    }

    #[tokio::test]
    async fn a_queued_turn_waits_for_quiet_but_not_forever() {
        let q = Arc::new(SessionQueues::new());
        let s =
            QueueSettings { debounce: Duration::from_millis(50), ..settings(QueueMode::Followup, 50, DropPolicy::New) };
        let first = turn(q.enter("k", &s, &arrival("1")).unwrap()).await.unwrap();
        let second = q.enter("k", &s, &arrival("2")).unwrap();
        drop(first);
        let second = turn(second).await.unwrap();
        // Quiet: it starts one debounce after the last arrival.
        let started = Instant::now();
        second.settle(s.debounce).await;
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        // Never quiet (a message every 10 ms): it still starts, after at most the bound.
        let third = q.enter("k", &s, &arrival("3")).unwrap();
        drop(second);
        let third = turn(third).await.unwrap();
        let chatter = {
            let q = q.clone();
            tokio::spawn(async move {
                loop {
                    let _ = q.enter("k", &s, &arrival("chatter"));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
        };
        let started = Instant::now();
        tokio::time::timeout(Duration::from_secs(30), third.settle(s.debounce)).await.expect("the bound holds");
        assert!(started.elapsed() >= Duration::from_secs(5), "it waited for quiet first: {:?}", started.elapsed());
        chatter.abort();
    }

    #[tokio::test]
    async fn collect_batches_one_chat_and_interrupt_and_stop_abort() {
        let q = SessionQueues::new();
        let s = settings(QueueMode::Collect, 5, DropPolicy::New);
        let running = turn(q.enter("k", &s, &arrival("first")).unwrap()).await.unwrap();
        let leader = q.enter("k", &s, &arrival("a")).unwrap();
        let Entered::Collected(b_stored) = q.enter("k", &s, &arrival("b")).unwrap() else { panic!("b is collected") };
        let other = Arrival { chat: "elsewhere".into(), ..arrival("c") };
        assert!(matches!(q.enter("k", &s, &other).unwrap(), Entered::Wait(_)), "another chat is not collected");
        let elevated = Arrival { rights: ToolRights { elevated: true, ..ToolRights::default() }, ..arrival("d") };
        assert!(matches!(q.enter("k", &s, &elevated).unwrap(), Entered::Wait(_)), "nor other tool rights");
        drop(running);
        let leader = turn(leader).await.unwrap();
        let (collected, _) = leader.settle(Duration::ZERO).await;
        let texts: Vec<String> = collected.unwrap().into_iter().map(|c| c.text).collect();
        assert_eq!(texts, ["a", "b"]);
        leader.stored();
        assert!(b_stored.await.is_ok(), "b is done once its batch's turn stored it");
        let aborted = leader.aborted();
        let _ = q.enter("k", &settings(QueueMode::Interrupt, 5, DropPolicy::New), &arrival("now")).unwrap();
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(5), aborted).await.unwrap(),
            "interrupted by a newer message (queue mode interrupt)"
        );
        assert_eq!(q.stop("k"), (true, 3));
    }
}
