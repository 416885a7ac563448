# chela: the gateway binary and the first-party plugins (Rust tools and the
# four channel adapters, as WebAssembly components) in a small Debian image.
#   docker build -t chela:dev .
#   docker run --rm -p 18789:18789 -e CHELA_GATEWAY_TOKEN=change-me chela:dev
# Kubernetes: deploy/kubernetes/ and docs/deploy.md.

# ---- chef: the build toolchain, with cargo-chef to cache dependency builds ----
FROM rust:1.95-bookworm AS chef
WORKDIR /src
RUN rustup target add wasm32-wasip2 \
 && cargo install cargo-chef --locked --version 0.1.78

# ---- plan: the host workspace's manifests and lock file, nothing else ----
FROM chef AS plan
COPY . .
RUN cargo chef prepare --recipe-path /recipe.json

# ---- build: the host's dependencies in their own layer (rebuilt only when a
# manifest or Cargo.lock changes), then the host binary and the components,
# in one cargo target dir ----
FROM chef AS build
COPY --from=plan /recipe.json /recipe.json
RUN cargo chef cook --release --locked -p chela --recipe-path /recipe.json
COPY . .
RUN cargo build --release --locked -p chela \
 && cargo build --release --locked --target wasm32-wasip2 --manifest-path plugins/Cargo.toml --target-dir target \
      -p tool-read -p tool-write -p tool-edit -p tool-apply-patch -p tool-exec -p tool-web-fetch \
      -p tool-memory-search -p tool-memory-get -p tool-sessions-list -p tool-sessions-history \
      -p tool-sessions-send -p tool-session-status -p tool-sessions-spawn \
      -p channel-telegram -p channel-slack -p channel-discord -p channel-whatsapp \
 && mkdir -p /out/plugins \
 && cp target/release/chela /out/chela \
 && cp target/wasm32-wasip2/release/tool_*.wasm target/wasm32-wasip2/release/channel_*.wasm /out/plugins/

# ---- run: the binary, the plugins, bubblewrap for sandboxed exec, tini ----
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates bubblewrap tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/chela --create-home chela
COPY --from=build /out/chela /usr/local/bin/chela
COPY --from=build /out/plugins/ /usr/lib/chela/plugins/
COPY deploy/chela.json5 /etc/chela/chela.json5
COPY examples/workspaces/ /usr/share/chela/personas/
ENV CHELA_STATE_DIR=/var/lib/chela \
    CHELA_CONFIG_PATH=/etc/chela/chela.json5
# A warm start from the first run: the plugins' compiled code ships beside
# them (/usr/lib/chela/plugins/.cwasm), so a fresh state volume compiles nothing.
RUN chela plugins precompile --ship && rm -rf /var/lib/chela/cache
USER 10001
EXPOSE 18789
# Off loopback the gateway refuses to start without a token
# (gateway.auth.token or CHELA_GATEWAY_TOKEN).
# tini is PID 1: it forwards SIGTERM to the gateway (which then drains) and
# reaps the processes `exec` spawns, so no zombie outlives its command.
ENTRYPOINT ["/usr/bin/tini", "--", "chela"]
CMD ["gateway", "--bind", "lan"]
