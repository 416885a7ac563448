//! Both versions of the channel contract behind one face: a 0.2.0 adapter
//! is called as it is; a 0.1.0 adapter (built before files, edits, typing
//! and reactions existed) is shown to the host as a 0.2.0 one that declares
//! none of those features — its events carry no attachments, its replies
//! only text.
//!
//! Must not: decide anything about a message (the runtime and the gateway
//! do); it only converts between the two versions' types.

use wasmtime::component::InstancePre;
use wasmtime::Store;

use crate::bindings::channel::chela::plugin0_2_0::channel_types as v2;
use crate::bindings::channel::exports::chela::plugin0_2_0::channel_adapter as v2a;
use crate::bindings::channel::{SocketChannelPlugin, SocketChannelPluginPre};
use crate::bindings::channel_v0_1::exports::chela::plugin0_1_0::channel_adapter as v1a;
use crate::bindings::channel_v0_1::{
    SocketChannelPlugin as SocketChannelPluginV1, SocketChannelPluginPre as SocketChannelPluginPreV1,
};
use crate::bindings::plugin::types as v1;
pub use crate::inspect::ContractVersion;
use crate::state::PluginState;

/// A linked channel component, ready to instantiate.
pub(super) enum Pre {
    V0_2(SocketChannelPluginPre<PluginState>),
    V0_1(SocketChannelPluginPreV1<PluginState>),
}

impl Pre {
    pub(super) fn new(pre: InstancePre<PluginState>, version: ContractVersion) -> wasmtime::Result<Pre> {
        Ok(match version {
            ContractVersion::V0_2 => Pre::V0_2(SocketChannelPluginPre::new(pre)?),
            ContractVersion::V0_1 => Pre::V0_1(SocketChannelPluginPreV1::new(pre)?),
        })
    }

    pub(super) fn instance_pre(&self) -> &InstancePre<PluginState> {
        match self {
            Pre::V0_2(p) => p.instance_pre(),
            Pre::V0_1(p) => p.instance_pre(),
        }
    }

    pub(super) fn bindings(
        &self,
        store: &mut Store<PluginState>,
        instance: &wasmtime::component::Instance,
    ) -> wasmtime::Result<Bindings> {
        Ok(match self {
            Pre::V0_2(_) => Bindings::V0_2(SocketChannelPlugin::new(store, instance)?),
            Pre::V0_1(_) => Bindings::V0_1(SocketChannelPluginV1::new(store, instance)?),
        })
    }
}

/// An instance's `channel-adapter` export, in either version.
pub(super) enum Bindings {
    V0_2(SocketChannelPlugin),
    V0_1(SocketChannelPluginV1),
}

impl Bindings {
    pub(super) fn adapter(&self) -> Adapter<'_> {
        match self {
            Bindings::V0_2(b) => Adapter::V0_2(b.chela_plugin0_2_0_channel_adapter()),
            Bindings::V0_1(b) => Adapter::V0_1(b.chela_plugin0_1_0_channel_adapter()),
        }
    }
}

/// The adapter's functions with 0.2.0's types, whichever version it is.
#[derive(Clone, Copy)]
pub(super) enum Adapter<'a> {
    V0_2(&'a v2a::Guest),
    V0_1(&'a v1a::Guest),
}

/// What a 0.1.0 adapter answers to a 0.2.0 function it does not have.
const NOT_IN_0_1: &str = "not supported by a chela:plugin@0.1.0 adapter";

type S<'s> = &'s mut Store<PluginState>;

impl Adapter<'_> {
    pub(super) async fn call_describe(&self, s: S<'_>) -> wasmtime::Result<v2a::ChannelInfo> {
        match self {
            Adapter::V0_2(a) => a.call_describe(s).await,
            Adapter::V0_1(a) => {
                let i = a.call_describe(s).await?;
                Ok(v2a::ChannelInfo {
                    id: i.id,
                    version: i.version,
                    text_limit: i.text_limit,
                    supports_threads: i.supports_threads,
                    http_hosts: i.http_hosts,
                    needs_polling: i.needs_polling,
                    features: v2a::Features::empty(),
                    upload_limit: 0,
                })
            }
        }
    }

    pub(super) async fn call_configure_account(
        &self,
        s: S<'_>,
        account: &str,
        settings: &str,
    ) -> wasmtime::Result<Result<(), String>> {
        match self {
            Adapter::V0_2(a) => a.call_configure_account(s, account, settings).await,
            Adapter::V0_1(a) => a.call_configure_account(s, account, settings).await,
        }
    }

    pub(super) async fn call_remove_account(&self, s: S<'_>, account: &str) -> wasmtime::Result<()> {
        match self {
            Adapter::V0_2(a) => a.call_remove_account(s, account).await,
            Adapter::V0_1(a) => a.call_remove_account(s, account).await,
        }
    }

    pub(super) async fn call_handle_webhook(
        &self,
        s: S<'_>,
        account: &str,
        request: &v1::HttpRequest,
    ) -> wasmtime::Result<v2a::WebhookOutcome> {
        match self {
            Adapter::V0_2(a) => a.call_handle_webhook(s, account, request).await,
            Adapter::V0_1(a) => {
                let o = a.call_handle_webhook(s, account, request).await?;
                Ok(v2a::WebhookOutcome { response: o.response, events: o.events.into_iter().map(event).collect() })
            }
        }
    }

    pub(super) async fn call_poll(
        &self,
        s: S<'_>,
        account: &str,
    ) -> wasmtime::Result<Result<Vec<v2::InboundEvent>, String>> {
        match self {
            Adapter::V0_2(a) => a.call_poll(s, account).await,
            Adapter::V0_1(a) => Ok(a.call_poll(s, account).await?.map(|evs| evs.into_iter().map(event).collect())),
        }
    }

    /// A 0.1.0 adapter gets the text only (the runtime never hands it files:
    /// it declares no `attachments-out`).
    pub(super) async fn call_send(&self, s: S<'_>, m: &v2::OutboundMessage) -> wasmtime::Result<v1::Delivery> {
        match self {
            Adapter::V0_2(a) => a.call_send(s, m).await,
            Adapter::V0_1(a) => {
                let old = v1::OutboundMessage {
                    account_id: m.account_id.clone(),
                    peer: m.peer.clone(),
                    thread_id: m.thread_id.clone(),
                    reply_to_message_id: m.reply_to_message_id.clone(),
                    text: m.text.clone(),
                };
                a.call_send(s, &old).await
            }
        }
    }

    pub(super) async fn call_edit(&self, s: S<'_>, m: &v2::MessageRef, text: &str) -> wasmtime::Result<v1::Delivery> {
        match self {
            Adapter::V0_2(a) => a.call_edit(s, m, text).await,
            Adapter::V0_1(_) => Ok(v1::Delivery::Failed(NOT_IN_0_1.into())),
        }
    }

    pub(super) async fn call_typing(
        &self,
        s: S<'_>,
        account: &str,
        peer: &v1::Peer,
        thread: Option<&str>,
    ) -> wasmtime::Result<Result<(), String>> {
        match self {
            Adapter::V0_2(a) => a.call_typing(s, account, peer, thread).await,
            Adapter::V0_1(_) => Ok(Err(NOT_IN_0_1.into())),
        }
    }

    pub(super) async fn call_react(
        &self,
        s: S<'_>,
        m: &v2::MessageRef,
        emoji: &str,
    ) -> wasmtime::Result<Result<(), String>> {
        match self {
            Adapter::V0_2(a) => a.call_react(s, m, emoji).await,
            Adapter::V0_1(_) => Ok(Err(NOT_IN_0_1.into())),
        }
    }

    pub(super) async fn call_resolve_attachment(
        &self,
        s: S<'_>,
        account: &str,
        reference: &str,
    ) -> wasmtime::Result<Result<v2::Download, String>> {
        match self {
            Adapter::V0_2(a) => a.call_resolve_attachment(s, account, reference).await,
            Adapter::V0_1(_) => Ok(Err(NOT_IN_0_1.into())),
        }
    }
}

/// A 0.1.0 event: no files, and no word on whether a bot sent it.
fn event(e: v1::InboundEvent) -> v2::InboundEvent {
    v2::InboundEvent {
        channel: e.channel,
        account_id: e.account_id,
        peer: e.peer,
        parent_peer: e.parent_peer,
        guild_id: e.guild_id,
        team_id: e.team_id,
        member_role_ids: e.member_role_ids,
        thread_id: e.thread_id,
        sender_id: e.sender_id,
        sender_name: e.sender_name,
        message_id: e.message_id,
        text: e.text,
        mentions_bot: e.mentions_bot,
        reply_to_message_id: e.reply_to_message_id,
        raw: e.raw,
        attachments: Vec::new(),
        sender_is_bot: false,
    }
}
