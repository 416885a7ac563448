//! `chela:plugin/log` → tracing, tagged with plugin and agent. Always granted.
//!
//! Must not: let a plugin choose its own plugin or agent tag.

use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker};

use crate::bindings::plugin::log::{self, Level};

/// Longest message kept; longer ones are cut (a plugin cannot flood the logs with one line).
const MAX_MESSAGE: usize = 4096;
/// Lines kept per call for the caller (the transcript, tests).
pub const MAX_LINES_PER_CALL: usize = 100;

/// An instance's log: lines go to tracing, tagged, and the call's first
/// [`MAX_LINES_PER_CALL`] are kept for the caller.
pub struct LogState {
    plugin: Arc<str>,
    agent: Arc<str>,
    pub(crate) lines: Vec<String>,
}

impl LogState {
    pub(crate) fn new(plugin: Arc<str>, agent: Arc<str>) -> LogState {
        LogState { plugin, agent, lines: Vec::new() }
    }
}

impl log::Host for LogState {
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
        let (plugin, agent) = (&*self.plugin, &*self.agent);
        match level {
            Level::Trace => tracing::trace!(plugin, agent, "{message}"),
            Level::Debug => tracing::debug!(plugin, agent, "{message}"),
            Level::Info => tracing::info!(plugin, agent, "{message}"),
            Level::Warn => tracing::warn!(plugin, agent, "{message}"),
            Level::Error => tracing::error!(plugin, agent, "{message}"),
        }
        if self.lines.len() < MAX_LINES_PER_CALL {
            self.lines.push(message);
        }
    }
}

pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut LogState,
) -> wasmtime::Result<()> {
    log::add_to_linker::<T, HasSelf<LogState>>(linker, get)
}
