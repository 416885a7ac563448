//! Building an [`AgentRuntime`]: the runtime, and the `sessions` bridge
//! through which its turns' tools reach back into it (list, history, send,
//! spawn). The two refer to each other, so they are made together here.
//!
//! Must not: hold any rule; it only wires parts given by the caller.

use std::sync::Arc;

use crate::runtime::{AgentRuntime, RuntimeParts};
use crate::sessions_access::SessionsBridge;

impl AgentRuntime {
    pub fn new(parts: RuntimeParts) -> Arc<AgentRuntime> {
        Arc::new_cyclic(|me| AgentRuntime::from_parts(parts, Arc::new(SessionsBridge::new(me.clone()))))
    }
}
