//! Host-side bindings of `wit/` (`chela:plugin@0.1.0`), async on both sides
//! so a guest waiting on the host never blocks a runtime thread.
//!
//! Must not: implement any host function (the capability modules do).

// `tool-plugin-all`: the exports of every tool world are the same; the
// imports it names give host traits for every capability.
wasmtime::component::bindgen!({
    world: "tool-plugin-all",
    path: "../../wit",
    imports: { default: async },
    exports: { default: async },
    with: { "chela:plugin/websocket.connection": crate::capability::websocket::connection::WsConnection },
});

/// The channel world, sharing the capability interfaces (and their host
/// implementations) with the tool world.
pub mod channel {
    wasmtime::component::bindgen!({
        world: "socket-channel-plugin",
        path: "../../wit",
        imports: { default: async },
        exports: { default: async },
        with: {
            "chela:plugin/types": super::chela::plugin::types,
            "chela:plugin/log": super::chela::plugin::log,
            "chela:plugin/kv": super::chela::plugin::kv,
            "chela:plugin/secrets": super::chela::plugin::secrets,
            "chela:plugin/websocket": super::chela::plugin::websocket,
        },
    });
}
