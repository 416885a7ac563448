//! `chela:plugin/log` → tracing, tagged with plugin and agent. Always granted.

use wasmtime::component::{HasSelf, Linker};

use crate::bindings::chela::plugin::log::{self, Level};
use crate::state::PluginState;

/// Longest message kept; longer ones are cut (a plugin cannot flood the logs with one line).
const MAX_MESSAGE: usize = 4096;
/// Lines kept per call for the caller (the transcript, tests).
pub const MAX_LINES_PER_CALL: usize = 100;

impl log::Host for PluginState {
    async fn log(&mut self, level: Level, message: String) {
        let mut message = message;
        if message.len() > MAX_MESSAGE {
            let mut cut = MAX_MESSAGE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        let (plugin, agent) = (&*self.plugin_id, &*self.agent_id);
        match level {
            Level::Trace => tracing::trace!(plugin, agent, "{message}"),
            Level::Debug => tracing::debug!(plugin, agent, "{message}"),
            Level::Info => tracing::info!(plugin, agent, "{message}"),
            Level::Warn => tracing::warn!(plugin, agent, "{message}"),
            Level::Error => tracing::error!(plugin, agent, "{message}"),
        }
        if self.logs.len() < MAX_LINES_PER_CALL {
            self.logs.push(message);
        }
    }
}

pub fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    log::add_to_linker::<_, HasSelf<PluginState>>(linker, |s| s)
}
