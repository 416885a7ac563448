//! A provider's streamed answer as server-sent events, parsed by a
//! maintained parser (`eventsource-stream`): bytes are decoded as UTF-8
//! across network reads (a character cut between two reads arrives whole),
//! and `\n`, `\r\n` and `\r` all end a line, as the SSE specification says.
//!
//! Must not: interpret an event's data (each provider folds its own), or
//! decode a network read on its own.

use std::pin::Pin;

use eventsource_stream::Eventsource;
use futures_util::{Stream, StreamExt};

/// The `data` of each event of `response`'s body, in order (an event's
/// `data:` lines joined by `\n`); an `Err` is a broken stream (a read
/// failed, or the bytes were not UTF-8).
pub(crate) fn event_data(response: reqwest::Response) -> Pin<Box<dyn Stream<Item = Result<String, String>> + Send>> {
    Box::pin(response.bytes_stream().eventsource().map(|item| match item {
        Ok(event) => Ok(event.data),
        Err(e) => Err(e.to_string()),
    }))
}
