//! Host-side bindings of `wit/`, async on both sides so a guest waiting on
//! the host never blocks a runtime thread. The capability interfaces
//! (`log`, `kv`, `secrets`, `process`, `sessions`, `websocket`) and the tool
//! contract are `chela:plugin@0.1.0`, bound once (with 0.2.0's `messaging`); the channel contract has
//! two versions, 0.2.0 (current) and 0.1.0 (still loaded: `channel/compat.rs`
//! shows a 0.1.0 adapter to the host as a 0.2.0 one).
//!
//! Must not: implement any host function (the capability modules do).

// `tool-plugin-all` (0.2.0: 0.1.0's plus `messaging`): the exports of every
// tool world are the same; the imports it names give host traits for every
// capability.
wasmtime::component::bindgen!({
    world: "chela:plugin/tool-plugin-all@0.2.0",
    path: "../../wit",
    // A kv read the shared database cannot answer traps (`kv.rs`).
    imports: {
        "chela:plugin/kv@0.1.0.get": async | trappable,
        "chela:plugin/kv@0.1.0.list-keys": async | trappable,
        default: async,
    },
    exports: { default: async },
    with: { "chela:plugin/websocket.connection": crate::capability::websocket::connection::WsConnection },
});

/// The 0.1.0 interfaces under a name without the version (bindgen adds it
/// because `wit/` holds two versions of `chela:plugin`).
pub use chela::plugin0_1_0 as plugin;
/// `messaging` and `automations`, the 0.2.0 interfaces a tool may import.
pub use chela::plugin0_2_0::{automations, messaging};

/// The channel world (0.2.0), sharing the capability interfaces (and their
/// host implementations) with the tool world.
pub mod channel {
    wasmtime::component::bindgen!({
        world: "chela:plugin/socket-channel-plugin@0.2.0",
        path: "../../wit",
        imports: { default: async },
        exports: { default: async },
        with: {
            "chela:plugin/types@0.1.0": super::plugin::types,
            "chela:plugin/log@0.1.0": super::plugin::log,
            "chela:plugin/kv@0.1.0": super::plugin::kv,
            "chela:plugin/secrets@0.1.0": super::plugin::secrets,
            "chela:plugin/websocket@0.1.0": super::plugin::websocket,
        },
    });
}

/// The channel world as 0.1.0 adapters were built against it.
pub mod channel_v0_1 {
    wasmtime::component::bindgen!({
        world: "chela:plugin/socket-channel-plugin@0.1.0",
        path: "../../wit",
        imports: { default: async },
        exports: { default: async },
        with: {
            "chela:plugin/types@0.1.0": super::plugin::types,
            "chela:plugin/log@0.1.0": super::plugin::log,
            "chela:plugin/kv@0.1.0": super::plugin::kv,
            "chela:plugin/secrets@0.1.0": super::plugin::secrets,
            "chela:plugin/websocket@0.1.0": super::plugin::websocket,
        },
    });
}
