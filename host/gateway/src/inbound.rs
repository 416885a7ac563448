//! The inbound pipeline (design §10): adapter event → DM policy → routing →
//! group policy and mention gating → the session's queue and the agent's
//! turn → the reply, through the same channel, account, peer and thread.
//!
//! Must not: route or build keys itself (core's dispatch does), or deliver a reply anywhere but the
//! chat it came from.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chela_agent::{DeliveryContext, Inbound, Origin, RunError, SessionEntry};
use chela_core::access::{
    dm_access, group_access, group_history_limit, history_visible, is_mentioned, mention_patterns, with_group_history,
    DmVerdict, GroupVerdict, HistoryLine,
};
use chela_core::ids::ChatType;
use chela_core::routing::{BroadcastOrder, PeerRef, Route, RouteInput};
use chela_core::snapshot::Snapshot;
use chela_plugin::channel::{ChannelRuntime, Delivery, InboundEvent, OutboundMessage, PeerKind};

use crate::backoff::backoff;
use crate::delivery::{deliver, peer_kind};
use crate::journal::JournalFailure;
use crate::journal_codec::{chat_key, dedupe_key, incoming, reply_json};
use crate::live::{Direction, LiveEvent};
use crate::reply_order::Turnstile;
use crate::Gateway;
use crate::{blocks, media_in, media_out, presence, preview, tool_summaries};
use chela_agent::queue::Absorbed;
use chela_core::block_stream::block_settings;
use chela_core::config::paths::{agent_workspace, session_media_dir};
use chela_core::presence::status_reactions;
use chela_core::presence::{ack_reaction, typing_interval, typing_start};
use chela_core::preview::preview_settings;
use chela_core::roster::Roster;

/// Waits before a turn the session store refused runs again.
const DEFERRED_FIRST_RETRY: Duration = Duration::from_millis(500);
const DEFERRED_LONGEST_RETRY: Duration = Duration::from_secs(30);

/// The WIT peer kind as core's chat type, and back.
pub fn chat_type(k: PeerKind) -> ChatType {
    match k {
        PeerKind::Direct => ChatType::Direct,
        PeerKind::Group => ChatType::Group,
        PeerKind::Channel => ChatType::Channel,
    }
}

/// What routing needs to know of an adapter's event (thread included: the
/// thread's session is decided by core, not here).
pub fn route_input(ev: &InboundEvent) -> RouteInput {
    RouteInput {
        channel: ev.channel.clone(),
        account_id: Some(ev.account_id.clone()),
        peer: Some(PeerRef::of(chat_type(ev.peer.kind), ev.peer.id.clone())),
        parent_peer: ev.parent_peer.as_ref().map(|p| PeerRef::of(chat_type(p.kind), p.id.clone())),
        guild_id: ev.guild_id.clone(),
        team_id: ev.team_id.clone(),
        member_role_ids: ev.member_role_ids.clone(),
        thread_id: ev.thread_id.clone(),
        ..RouteInput::default()
    }
}

/// Where one message stands with its chat's order: who to tell once it has
/// its place in its session's line, and its place in the reply order.
pub(crate) struct Stage<'a> {
    pub admitted: Option<tokio::sync::oneshot::Sender<()>>,
    pub order: Option<&'a Turnstile>,
}

/// What became of one inbound event (for logs, metrics and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Replied {
        agent_id: String,
        session_key: String,
        /// The platform's ids of what was sent.
        platform_ids: Vec<String>,
        /// The journal recorded the event finished with this reply.
        finished: bool,
    },
    Dropped(String),
    Failed(String),
    /// The turn could not be stored (the disk refused a session write): the
    /// event stays unfinished in the journal and is run again.
    Deferred(String),
    /// A broadcast group: one outcome per agent.
    Broadcast(Vec<Outcome>),
}

/// An event's place in the journal: its sequence number (`None`: not
/// journaled) and the agents whose reply to it is already journaled (a
/// replayed broadcast does not answer twice).
#[derive(Debug, Clone, Default)]
pub(crate) struct Ticket {
    pub seq: Option<u64>,
    pub answered_by: Vec<String>,
    /// When it was accepted in this process (`None`: replayed from the journal).
    pub accepted: Option<std::time::Instant>,
}

impl Ticket {
    /// An event the journal accepted just now as `seq`.
    pub fn accepted_now(seq: u64) -> Ticket {
        Ticket { seq: Some(seq), answered_by: Vec::new(), accepted: Some(std::time::Instant::now()) }
    }
}

impl Gateway {
    /// Accepts one event into the journal and runs it through the pipeline
    /// at once (what the message path does per chat, in one call). A
    /// duplicate of an accepted event is dropped. Never panics.
    pub async fn handle_event(self: &Arc<Self>, channel: Arc<ChannelRuntime>, ev: InboundEvent) -> Outcome {
        let accepted = self.journal.accept(vec![incoming(&ev)]).await;
        match accepted.as_deref() {
            Ok([Some(seq)]) => self.process(channel, ev, Ticket::accepted_now(*seq), None, None).await,
            Ok(_) => self.drop_event(&ev.channel, &ev.account_id, "duplicate: this message was accepted before"),
            Err(e) => self.fail(&ev.channel, &ev.account_id, "journal", e.to_string()),
        }
    }

    /// Runs an accepted event through the pipeline and records in the
    /// journal that it is finished (its replies journaled, or none due).
    /// `admitted` is told when the message has its place in its session's
    /// line; `order` holds its reply behind its chat's earlier ones.
    pub(crate) async fn process(
        self: &Arc<Self>,
        channel: Arc<ChannelRuntime>,
        ev: InboundEvent,
        ticket: Ticket,
        admitted: Option<tokio::sync::oneshot::Sender<()>>,
        order: Option<&Turnstile>,
    ) -> Outcome {
        let _inflight = self.inflight.enter();
        let seq = ticket.seq;
        let mut attempt = 0;
        let mut admitted = admitted;
        let outcome = loop {
            let stage = Stage { admitted: admitted.take(), order };
            let outcome = self.pipeline(channel.clone(), ev.clone(), ticket.clone(), stage).await;
            // A turn the store refused runs again once it can be stored (the
            // runtime retries one that has its session's place itself; this is
            // for a refusal before that). Not journaled, or shutting down: it
            // stays for the next start.
            if !matches!(outcome, Outcome::Deferred(_)) || seq.is_none() || self.stopping.load(Ordering::SeqCst) {
                break outcome;
            }
            tokio::time::sleep(backoff(DEFERRED_FIRST_RETRY, attempt, DEFERRED_LONGEST_RETRY)).await;
            attempt += 1;
        };
        if let Some(seq) = seq {
            let how = match &outcome {
                Outcome::Replied { finished: true, .. } => None,
                // Refused by the store while shutting down: it stays unfinished.
                Outcome::Deferred(_) => None,
                // A broadcast with an agent the store refused stays unfinished:
                // the next start runs that agent (the others' replies are journaled).
                Outcome::Broadcast(o) if o.iter().any(|o| matches!(o, Outcome::Deferred(_))) => None,
                Outcome::Replied { .. } | Outcome::Broadcast(_) => Some("replied"),
                Outcome::Dropped(_) => Some("dropped"),
                Outcome::Failed(_) => Some("failed"),
            };
            if let Some(how) = how {
                if let Err(e) = self.journal.finish(seq, how).await {
                    tracing::warn!(seq, error = %e, "cannot mark the message finished; it will run again after a restart");
                }
            }
        }
        outcome
    }

    /// The pipeline of one event. Every exit is an [`Outcome`].
    async fn pipeline(
        self: &Arc<Self>,
        channel: Arc<ChannelRuntime>,
        ev: InboundEvent,
        ticket: Ticket,
        stage: Stage<'_>,
    ) -> Outcome {
        // One snapshot for the whole message: access, routing and every turn it starts.
        let snap = self.snapshot();
        let cfg = &snap.config;
        let (ch, account) = (ev.channel.clone(), ev.account_id.clone());
        if ch != channel.channel_id() || !channel.has_account(&account) {
            return self.drop_event(&ch, &account, "adapter reported another channel or account");
        }
        // DM access runs before routing: unknown senders never reach an agent.
        if ev.peer.kind == PeerKind::Direct {
            let (c, a) = (ch.clone(), account.clone());
            let approved = match self.on_pairing(move |p| p.approved(&c, &a)).await {
                Ok(approved) => approved,
                // Not a stranger for want of a list: the event stays in the journal and runs again.
                Err(e) if e.passes() => return self.defer(&ch, &account, "access", e.to_string()),
                Err(e) => {
                    tracing::warn!(error = %e, "unreadable approved-senders list; treating it as empty");
                    Vec::new()
                }
            };
            match dm_access(cfg, &ch, &account, &ev.sender_id, &approved) {
                DmVerdict::Allow => {}
                DmVerdict::Pairing => return self.offer_pairing(&channel, &ev).await,
                DmVerdict::Deny(why) => return self.drop_event(&ch, &account, &why),
            }
        }
        let dispatch = match snap.routes.dispatch(&route_input(&ev)) {
            Ok(d) => d,
            Err(e) => return self.fail(&ch, &account, "route", format!("no agent for the message: {e}")),
        };
        let (routes, order) = (dispatch.routes, dispatch.broadcast);
        for r in &routes {
            self.metrics.inc("chela_routes_total", &[("matched_by", r.matched_by.as_str()), ("agent", &r.agent_id)]);
        }
        let mut ev = ev;
        if ev.peer.kind != PeerKind::Direct {
            // A forum topic or thread keeps its own history.
            let thread = ev.thread_id.as_deref().map(|t| format!(":thread:{t}")).unwrap_or_default();
            let group = (ch.clone(), account.clone(), format!("{}{thread}", ev.peer.id));
            let limit = group_history_limit(cfg, &ch, &account);
            match group_access(cfg, &ch, &account, &ev.peer.id, &ev.sender_id) {
                GroupVerdict::Deny(why) => return self.drop_event(&ch, &account, &why),
                GroupVerdict::Allow { require_mention: true }
                    if !ev.mentions_bot
                        && !routes.iter().any(|r| is_mentioned(&mention_patterns(cfg, &r.agent_id), &ev.text)) =>
                {
                    // Kept for the next answered message of the group.
                    if history_visible(cfg, &ch, &account, &ev.sender_id) && !ev.text.trim().is_empty() {
                        let sender =
                            ev.sender_name.clone().filter(|n| !n.trim().is_empty()).unwrap_or(ev.sender_id.clone());
                        self.group_history.record(group, HistoryLine { sender, text: ev.text.clone() }, limit);
                    }
                    return self.drop_event(&ch, &account, "group message without a mention");
                }
                GroupVerdict::Allow { .. } => {
                    // A replayed event after a crash finds no history: it was given the first time.
                    let lines = self.group_history.take(&group, limit);
                    ev.text = with_group_history(&lines, &ev.text);
                }
            }
        }
        // Two bots answering each other: the pair has a budget.
        if ev.sender_is_bot && !self.bot_pair_may_talk(cfg, &ev, true) {
            return self.drop_event(
                &ch,
                &account,
                "bot loop protection: this bot pair exceeded botLoopProtection.maxEventsPerWindow; cooling down",
            );
        }
        // A replayed event: agents whose reply is already journaled are done.
        let routes: Vec<Route> = routes.into_iter().filter(|r| !ticket.answered_by.contains(&r.agent_id)).collect();
        let Some(order) = order else {
            return match routes.into_iter().next() {
                Some(route) => self.run_route(&snap, &channel, &ev, route, &ticket, true, stage).await,
                None if !ticket.answered_by.is_empty() => Outcome::Dropped("answered before a restart".into()),
                None => self.fail(&ch, &account, "route", "routing returned no route".into()),
            };
        };
        // Broadcast: each agent on its own; one failing does not stop the others.
        let mut outcomes = Vec::with_capacity(routes.len());
        // The chat's next message waits until every agent of the broadcast is done.
        let held = stage.admitted;
        if order == BroadcastOrder::Sequential {
            for route in routes {
                let stage = Stage { admitted: None, order: stage.order };
                outcomes.push(self.run_route(&snap, &channel, &ev, route, &ticket, false, stage).await);
            }
        } else {
            // The agents answer at once, so the chat's earlier replies go first.
            if let Some(order) = stage.order {
                order.wait().await;
            }
            let tasks: Vec<_> = routes
                .into_iter()
                .map(|route| {
                    let (gw, snap, channel, ev, ticket) =
                        (self.clone(), snap.clone(), channel.clone(), ev.clone(), ticket.clone());
                    tokio::spawn(async move {
                        let stage = Stage { admitted: None, order: None };
                        gw.run_route(&snap, &channel, &ev, route, &ticket, false, stage).await
                    })
                })
                .collect();
            for t in tasks {
                outcomes.push(t.await.unwrap_or_else(|e| Outcome::Failed(format!("broadcast turn panicked: {e}"))));
            }
        }
        drop(held);
        Outcome::Broadcast(outcomes)
    }

    /// One agent's turn for an event, and its reply through the event's own
    /// route: journaled (with the event finished, when `finish`), then sent.
    #[allow(clippy::too_many_arguments)]
    async fn run_route(
        self: &Arc<Self>,
        snap: &Snapshot,
        channel: &Arc<ChannelRuntime>,
        ev: &InboundEvent,
        route: Route,
        ticket: &Ticket,
        finish: bool,
        stage: Stage<'_>,
    ) -> Outcome {
        let seq = ticket.seq;
        let (ch, account) = (ev.channel.clone(), ev.account_id.clone());
        self.metrics
            .inc("chela_messages_in_total", &[("channel", &ch), ("account", &account), ("agent", &route.agent_id)]);
        let session_key = route.session_key.to_string();
        self.live.publish(
            LiveEvent::new(Direction::In, &ch, &account).agent(&route.agent_id, Some(&session_key)).text(&ev.text),
        );
        let cfg = &snap.config;
        let mentioned = ev.mentions_bot || is_mentioned(&mention_patterns(cfg, &route.agent_id), &ev.text);
        // Acknowledged once, when it first comes in (not when replayed after a restart).
        let ack =
            ticket.accepted.and_then(|_| ack_reaction(cfg, &ch, &account, &route.agent_id, route.chat_type, mentioned));
        // Its stages as reactions after the acknowledgement (`messages.statusReactions`), which
        // then sends that first; else the acknowledgement alone.
        let status = status_reactions(cfg, &ch, ack.as_deref()).and_then(|s| presence::Status::begin(channel, ev, s));
        if let (Some(emoji), None) = (&ack, &status) {
            presence::acknowledge(channel, ev, emoji.clone());
        }
        let files = match ev.attachments.is_empty() {
            true => media_in::Files::default(),
            false => {
                let dir = session_media_dir(cfg, &self.env, &route.agent_id, &session_key);
                let limit = chela_core::media::max_bytes(cfg, &ch, &account, &route.agent_id);
                let agent = media_in::For { runtime: &self.runtime, cfg, agent_id: &route.agent_id };
                media_in::take_in(channel, ev, &dir, limit, agent).await
            }
        };
        if !files.refused.is_empty() {
            let notice = OutboundMessage {
                account_id: account.clone(),
                peer: ev.peer.clone(),
                thread_id: ev.thread_id.clone(),
                reply_to_message_id: Some(ev.message_id.clone()),
                text: format!("⚠️ {}", files.refused.join("\n⚠️ ")),
                attachments: Vec::new(),
                identity: None,
            };
            if let Err(e) = deliver(channel, notice).await {
                tracing::warn!(channel = %ch, account, error = %e, "refused-file notice not delivered");
            }
            if ev.text.trim().is_empty() && files.stored == 0 {
                return self.drop_event(&ch, &account, "attachment refused: over the size limit");
            }
        }
        let typing = presence::Typing::begin(
            channel,
            ev,
            typing_start(cfg, &route.agent_id, route.chat_type, mentioned),
            typing_interval(cfg),
        );
        // Blocks as they are written, or one preview edited in place (never
        // both), and `/verbose` summaries: only into a chat `sendPolicy` lets
        // this session's answers into (what is sent while the turn runs would
        // otherwise get past it).
        let entry = self.session_entry(&session_key);
        let may_deliver = may_send_with(cfg, &session_key, &ch, route.chat_type, entry.as_ref());
        let limit = channel.info.text_limit.max(1) as usize;
        let thinking = entry.as_ref().and_then(|e| e.thinking_level());
        let prefix = |model: Option<&str>| {
            presence::reply_prefix(cfg, &ch, &account, &route.agent_id, thinking.as_deref(), model)
        };
        let blocks = block_settings(cfg, &route.agent_id, &ch, &account, limit).filter(|_| may_deliver).map(|s| {
            let look =
                blocks::Look { identity: presence::identity(cfg, &route.agent_id, channel), prefix: prefix(None) };
            blocks::BlockReplies::begin(channel, ev, s, look)
        });
        let preview = match blocks {
            Some(_) => None,
            None if !may_deliver => None,
            None => preview::Preview::begin(channel, ev, preview_settings(cfg, &ch, &account)),
        };
        // `/verbose` lines as the calls finish (a task only where the session asked for them).
        let verbose = entry.as_ref().is_some_and(|e| e.verbose_level() != chela_agent::store::Verbose::Off);
        let summaries = (may_deliver && verbose).then(|| tool_summaries::ToolSummaries::begin(channel, ev));
        let on_text: chela_agent::TextSink = {
            let sinks: Vec<chela_agent::TextSink> = std::iter::once(typing.sink())
                .chain(summaries.as_ref().map(|s| s.sink()))
                .chain(status.as_ref().map(|s| s.sink()))
                .chain(preview.as_ref().map(|p| p.sink()))
                .chain(blocks.as_ref().map(|b| b.sink()))
                .collect();
            Arc::new(move |ev: chela_agent::TextEvent<'_>| sinks.iter().for_each(|s| s(ev)))
        };
        let inbound = Inbound {
            target: route.target(),
            text: files.text(&ev.text),
            sender_id: Some(ev.sender_id.clone()),
            origin: Origin {
                label: ev.sender_name.clone(),
                provider: Some(ch.clone()),
                chat_type: Some(route.chat_type.as_str().to_string()),
                from: Some(format!("{ch}:{}", ev.sender_id)),
                to: Some(format!("{ch}:{}", ev.peer.id)),
                account_id: Some(account.clone()),
                thread_id: ev.thread_id.clone(),
            },
            extra_system: None,
            // A journaled event replayed after a crash continues its turn.
            message_ref: seq.map(|_| dedupe_key(ev)).filter(|r| !r.is_empty()),
            model_override: None,
            sampling: None,
            scheduled: None,
            media: files.media,
            delivery: Some(DeliveryContext {
                channel: ch.clone(),
                to: ev.peer.id.clone(),
                account_id: account.clone(),
                thread_id: ev.thread_id.clone(),
            }),
            // Held back with the reply where `sendPolicy` holds it back.
            live_tool_summaries: may_deliver,
            exec_tightening: Default::default(),
        };
        let started = std::time::Instant::now();
        let turn = self.runtime.run_admitted(snap, inbound, Some(on_text), stage.admitted).await;
        drop(typing);
        // The preview's last edit is done before the answer replaces it;
        // the last block is out before the rest of the reply goes.
        let shown = match preview {
            Some(p) => p.finish().await,
            None => None,
        };
        let streamed = match blocks {
            Some(b) => b.finish().await,
            None => blocks::Streamed::default(),
        };
        if let Some(s) = summaries {
            s.finish().await;
        }
        if let Some(s) = status {
            s.finish(matches!(&turn, Err(e) if !matches!(e, RunError::Aborted(_))));
        }
        let turn = match turn {
            Ok(t) => t,
            Err(RunError::Aborted(why)) => {
                return self.drop_event(&ch, &account, &format!("queue: turn aborted ({why})"))
            }
            Err(RunError::Store(e)) if e.passes() => {
                let e = RunError::Store(e);
                tracing::error!(channel = %ch, account, error = %e, "the turn cannot be stored; it will run again");
                self.metrics.inc("chela_errors_total", &[("stage", "store")]);
                return Outcome::Deferred(e.to_string());
            }
            Err(e) => return self.fail(&ch, &account, "agent", e.to_string()),
        };
        let agent = [("agent", turn.agent_id.as_str())];
        self.metrics.observe("chela_turn_seconds", &agent, started.elapsed().as_secs_f64());
        self.metrics.observe("chela_model_seconds", &agent, turn.model_seconds);
        self.metrics.observe("chela_store_seconds", &agent, turn.store_seconds);
        for call in &turn.tool_calls {
            let result = if call.ok { "ok" } else { "error" };
            let labels = [("agent", turn.agent_id.as_str()), ("tool", call.name.as_str())];
            self.metrics.inc("chela_tool_calls_total", &[labels[0], labels[1], ("result", result)]);
            self.metrics.observe("chela_tool_call_seconds", &labels, call.elapsed_ms as f64 / 1000.0);
        }
        if let Some(absorbed) = turn.absorbed {
            let why = match absorbed {
                Absorbed::Steered => "queue: steered into the running turn, which answers it".to_string(),
                Absorbed::Collected => "queue: collected with the message waiting before it".to_string(),
                Absorbed::DroppedByCap { summarized: true } => {
                    "queue: dropped at the cap (summarized for the next turn)".to_string()
                }
                Absorbed::DroppedByCap { summarized: false } => "queue: dropped at the cap".to_string(),
                Absorbed::Stopped => "queue: cleared by /stop".to_string(),
            };
            return self.drop_event(&ch, &account, &why);
        }
        if turn.reply.trim().is_empty() {
            return Outcome::Dropped("the agent chose not to reply".into());
        }
        // A command's answer is the gateway's own, not the agent's: it goes
        // (so an owner can turn delivery back on and see it).
        if !turn.is_command() && !may_deliver {
            // The turn ran and is in the transcript; only its delivery is held back.
            return self.drop_event(&ch, &account, "send policy: session.sendPolicy denies replies into this session");
        }
        // After the chat's earlier messages have sent their replies (a
        // command's answer goes at once: it is about now, not a turn).
        if let Some(order) = stage.order.filter(|_| !turn.is_command()) {
            order.wait().await;
        }
        // The files its `MEDIA:` lines name, from the agent's own workspace.
        let workspace = agent_workspace(cfg, &Roster::from_config(cfg), &turn.agent_id, &self.env);
        let may_read = chela_core::policy::may_attach_files(cfg, &turn.agent_id, &route.session_kind);
        let outgoing = media_out::attach(&turn.reply, &workspace, may_read, channel);
        // What the blocks did not carry (all of it when none went out).
        let text = match (streamed.ids.is_empty(), prefix(Some(&turn.model)).filter(|_| !turn.is_command())) {
            (true, Some(p)) => chela_core::reply_prefix::apply(&p, &outgoing.text),
            _ => streamed.rest_of(&outgoing.text),
        };
        let all_said = !streamed.ids.is_empty() && text.is_empty() && outgoing.attachments.is_empty();
        // The reply goes back exactly where the message came from.
        let reply = OutboundMessage {
            account_id: account.clone(),
            peer: ev.peer.clone(),
            thread_id: ev.thread_id.clone(),
            reply_to_message_id: streamed.ids.is_empty().then(|| ev.message_id.clone()),
            text,
            attachments: outgoing.attachments,
            identity: presence::identity(cfg, &turn.agent_id, channel),
        };
        let chat = chat_key(&ch, &account, &ev.peer, ev.thread_id.as_deref());
        let journaled = match seq {
            None => None,
            // The blocks said it all: nothing is left to send (or to journal).
            Some(_) if all_said => None,
            Some(seq) => {
                let message = reply_json(&ch, &reply);
                let written = if finish {
                    self.journal.reply_and_finish(seq, &turn.agent_id, &chat, message).await
                } else {
                    self.journal.reply(seq, &turn.agent_id, &chat, message).await
                };
                match written {
                    Ok(id) => Some(id),
                    // Another replica took the message over while this one was
                    // cut off from the database: the answer is its to give.
                    Err(e @ JournalFailure::TakenOver { .. }) => {
                        return self.drop_event(&ch, &account, &e.to_string());
                    }
                    // Sent anyway: an answer now beats none; only a restart could repeat it.
                    Err(e) => {
                        tracing::warn!(seq, error = %e, "reply not journaled; sending it anyway");
                        None
                    }
                }
            }
        };
        let finished = finish && journaled.is_some();
        let out = LiveEvent::new(Direction::Out, &ch, &account)
            .agent(&turn.agent_id, Some(&session_key))
            .text(if streamed.ids.is_empty() { &reply.text } else { &turn.reply });
        let sent = match shown {
            _ if all_said => Ok(Vec::new()),
            Some((message, _)) => self.send_reply_over(channel, journaled, reply, message).await,
            None => self.send_reply(channel, journaled, reply).await,
        };
        let sent = sent.map(|ids| streamed.ids.into_iter().chain(ids).collect::<Vec<_>>());
        match sent {
            Ok(ids) => {
                if ev.sender_is_bot {
                    self.bot_pair_may_talk(cfg, ev, false);
                }
                self.metrics.inc(
                    "chela_messages_out_total",
                    &[("channel", &ch), ("account", &account), ("agent", &turn.agent_id)],
                );
                self.live.publish(out);
                if let Some(at) = ticket.accepted {
                    self.metrics.observe(
                        "chela_message_reply_seconds",
                        &[("channel", &ch)],
                        at.elapsed().as_secs_f64(),
                    );
                }
                Outcome::Replied { agent_id: turn.agent_id, session_key, platform_ids: ids, finished }
            }
            // The reply is recorded dead in the journal; the event itself is done.
            Err(e) => self.fail(&ch, &account, "deliver", e),
        }
    }

    /// Counts one event of a bot pair (an inbound bot message, or our reply
    /// to one: `inbound` false) in the pair's ledger; whether an inbound one may be answered.
    fn bot_pair_may_talk(&self, cfg: &chela_core::config::Config, ev: &InboundEvent, inbound: bool) -> bool {
        let limits = chela_core::bot_loop::limits(cfg, &ev.channel, &ev.account_id, &ev.peer.id);
        let key = (ev.channel.clone(), ev.account_id.clone(), ev.peer.id.clone(), ev.sender_id.clone());
        let mut guard = self.bot_loops.lock().unwrap_or_else(|p| p.into_inner());
        let now = guard.0.elapsed().as_millis() as u64;
        if inbound {
            guard.1.inbound(&key, now, &limits)
        } else {
            guard.1.reply(&key, now, &limits);
            true
        }
    }

    /// A reply whose preview is on screen: the preview is edited into the
    /// answer (as much of it as one message holds), and the rest (more
    /// text, files) is sent after it. If the edit fails, the whole reply is
    /// sent as usual. The result is recorded against its journal id.
    async fn send_reply_over(
        &self,
        channel: &ChannelRuntime,
        journal_id: Option<u64>,
        reply: OutboundMessage,
        preview: chela_plugin::channel::MessageRef,
    ) -> Result<Vec<String>, String> {
        let limit = channel.info.text_limit.max(1) as usize;
        let mut head = preview::cut(&reply.text, limit);
        if head.len() < reply.text.len() {
            // Cut at the last line or word break that leaves a sizeable first part.
            if let Some(i) = head.rfind('\n').or_else(|| head.rfind(' ')).filter(|i| *i > head.len() / 2) {
                head = &head[..i];
            }
        }
        let (head, rest) = (head.trim_end().to_string(), reply.text[head.len()..].trim_start().to_string());
        if head.is_empty() {
            return self.send_reply(channel, journal_id, reply).await;
        }
        match channel.edit(preview.clone(), &head).await {
            Ok(Delivery::Sent(_)) => {}
            other => {
                tracing::warn!(channel = %channel.channel_id(), result = ?other, "the preview could not become the answer; sending it as a new message");
                return self.send_reply(channel, journal_id, reply).await;
            }
        }
        let mut ids = vec![preview.message_id];
        if rest.is_empty() && reply.attachments.is_empty() {
            if let Some(id) = journal_id {
                if let Err(e) = self.journal.delivered(id).await {
                    tracing::warn!(id, error = %e, "cannot record the reply's delivery");
                }
            }
            return Ok(ids);
        }
        let remainder = OutboundMessage { text: rest, reply_to_message_id: None, ..reply };
        ids.extend(self.send_reply(channel, journal_id, remainder).await?);
        Ok(ids)
    }

    /// Sends a reply and records the result against its journal id (when it has one).
    pub(crate) async fn send_reply(
        &self,
        channel: &ChannelRuntime,
        journal_id: Option<u64>,
        reply: OutboundMessage,
    ) -> Result<Vec<String>, String> {
        let sent = deliver(channel, reply).await;
        if let Some(id) = journal_id {
            let marked = match &sent {
                Ok(_) => self.journal.delivered(id).await,
                Err(why) => {
                    self.metrics.inc("chela_replies_failed_total", &[("channel", channel.channel_id())]);
                    self.journal.undeliverable(id, why).await
                }
            };
            if let Err(e) = marked {
                tracing::warn!(id, error = %e, "cannot record the reply's delivery");
            }
        }
        sent
    }

    /// Delivers a reply no inbound message waits for (a sub-agent's result,
    /// as the parent session answered it) to the chat the session belongs to.
    /// Delivers a reply nobody's message waits for (a sub-agent's result, a
    /// scheduled run's output); whether it was sent.
    pub async fn deliver_announcement(&self, a: chela_agent::Announcement) -> bool {
        let Some(d) = a.delivery else {
            tracing::info!(session = %a.session_key, "announcement for a session without a chat; it stays in the transcript");
            return false;
        };
        let Some(channel) = self.channel(&d.channel) else {
            tracing::warn!(session = %a.session_key, channel = %d.channel, "announcement: channel not running");
            return false;
        };
        if a.text.trim().is_empty() {
            return false;
        }
        if !self.may_send(&self.config(), a.session_key.as_str(), &d.channel, a.chat_type) {
            tracing::info!(session = %a.session_key, "announcement held back: session.sendPolicy denies it");
            return false;
        }
        let agent = a.session_key.agent_id();
        let out = LiveEvent::new(Direction::Out, &d.channel, &d.account_id)
            .agent(&agent, Some(a.session_key.as_str()))
            .text(&a.text);
        let msg = OutboundMessage {
            account_id: d.account_id.clone(),
            peer: chela_plugin::channel::Peer { kind: peer_kind(a.chat_type), id: d.to.clone() },
            thread_id: d.thread_id.clone(),
            reply_to_message_id: None,
            text: a.text,
            attachments: Vec::new(),
            identity: None,
        };
        match deliver(&channel, msg).await {
            Ok(_) => {
                self.metrics.inc(
                    "chela_messages_out_total",
                    &[("channel", &d.channel), ("account", &d.account_id), ("agent", &agent)],
                );
                self.live.publish(out);
                true
            }
            Err(e) => {
                self.fail(&d.channel, &d.account_id, "announce", e);
                false
            }
        }
    }

    /// An unknown sender under `dmPolicy: "pairing"`: a new request gets a
    /// code in reply (once); the message itself is not routed.
    async fn offer_pairing(&self, channel: &ChannelRuntime, ev: &InboundEvent) -> Outcome {
        let (ch, account) = (ev.channel.as_str(), ev.account_id.as_str());
        let (c, a, sender, name) = (ch.to_string(), account.to_string(), ev.sender_id.clone(), ev.sender_name.clone());
        match self.on_pairing(move |p| p.request(&c, &a, &sender, name.as_deref())).await {
            Ok(Some(code)) => {
                let text = format!(
                    "I don't know you yet. Your pairing code is {code}.\nAsk the owner of this bot to run: chela pairing approve {ch} {code}"
                );
                let msg = OutboundMessage {
                    account_id: account.to_string(),
                    peer: ev.peer.clone(),
                    thread_id: ev.thread_id.clone(),
                    reply_to_message_id: None,
                    text,
                    attachments: Vec::new(),
                    identity: None,
                };
                if let Err(e) = deliver(channel, msg).await {
                    return self.fail(ch, account, "pairing", e);
                }
                tracing::info!(channel = ch, account, sender = %ev.sender_id, "pairing code sent");
                self.drop_event(ch, account, "pairing required: code sent")
            }
            Ok(None) => self.drop_event(ch, account, "pairing required: a request is pending (or too many are)"),
            Err(e) => self.fail(ch, account, "pairing", e.to_string()),
        }
    }

    /// Counts and logs an event that gets no turn; the metric's `reason` is
    /// the class of `why` (its text before the first `:`).
    pub(crate) fn drop_event(&self, channel: &str, account: &str, why: &str) -> Outcome {
        tracing::info!(channel, account, reason = why, "inbound message dropped");
        let reason = why.split(':').next().unwrap_or(why);
        let class = if reason.contains("duplicate") {
            "duplicate"
        } else if reason.contains("pairing") {
            "pairing"
        } else if reason.starts_with("queue") {
            "queue"
        } else if reason.starts_with("send policy") {
            "send_policy"
        } else if reason.contains("taken over") {
            "taken_over"
        } else if reason.contains("mention") {
            "no_mention"
        } else if reason.contains("group") {
            "group_policy"
        } else {
            "dm_policy"
        };
        self.metrics
            .inc("chela_messages_dropped_total", &[("channel", channel), ("account", account), ("reason", class)]);
        self.live.publish(LiveEvent::new(Direction::Dropped, channel, account).reason(why, class));
        Outcome::Dropped(why.to_string())
    }

    /// Whether `session.sendPolicy` (or the session's own `sendPolicy`) lets
    /// an answer into `session_key`'s chat on `channel`.
    pub(crate) fn may_send(
        &self,
        cfg: &chela_core::config::schema::Config,
        session_key: &str,
        channel: &str,
        chat: ChatType,
    ) -> bool {
        let entry = self.session_entry(session_key);
        may_send_with(cfg, session_key, channel, chat, entry.as_ref())
    }

    /// The index entry of `session_key` (`None`: a new session, or none readable).
    pub(crate) fn session_entry(&self, session_key: &str) -> Option<SessionEntry> {
        let agent =
            chela_core::session_key::parse_agent_session_key(session_key).map(|p| p.agent_id).unwrap_or_default();
        self.runtime.store(&agent).ok().and_then(|s| s.get(session_key).ok().flatten())
    }

    fn fail(&self, channel: &str, account: &str, stage: &'static str, message: String) -> Outcome {
        tracing::warn!(channel, account, stage, error = %message, "inbound message failed");
        self.metrics.inc("chela_errors_total", &[("stage", stage)]);
        Outcome::Failed(message)
    }

    /// An event that cannot be decided now (a store it needs is away): it
    /// stays unfinished in the journal and is run again.
    fn defer(&self, channel: &str, account: &str, stage: &'static str, message: String) -> Outcome {
        tracing::warn!(channel, account, stage, error = %message, "inbound message deferred");
        self.metrics.inc("chela_errors_total", &[("stage", stage)]);
        Outcome::Deferred(message)
    }
}

/// [`Gateway::may_send`] with the session's entry already read.
pub(crate) fn may_send_with(
    cfg: &chela_core::config::schema::Config,
    session_key: &str,
    channel: &str,
    chat: ChatType,
    entry: Option<&SessionEntry>,
) -> bool {
    let own = entry.and_then(|e| e.extra.get("sendPolicy")).and_then(|v| v.as_str());
    let target =
        chela_core::send_policy::SendTarget { session_key, channel: Some(channel), chat_type: Some(chat), own };
    chela_core::send_policy::send_allowed(cfg, &target)
}
