//! Host-side bindings of `wit/` (`chela:plugin@0.1.0`), async on both sides
//! so a guest waiting on the host never blocks a runtime thread.

wasmtime::component::bindgen!({
    world: "tool-plugin",
    path: "../../wit",
    imports: { default: async },
    exports: { default: async },
});
