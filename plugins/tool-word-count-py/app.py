"""`word_count`: counts words, lines and characters of a text.

A chela tool plugin in Python (componentize-py, world `tool-plugin`). Built by
`cargo xtask build-plugins` into target/polyglot/tool_word_count_py.wasm.
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import log, types

SCHEMA = json.dumps(
    {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
)


class Tool(exports.Tool):
    def describe(self) -> types.ToolInfo:
        return types.ToolInfo(
            name="word_count",
            description="Counts the words, lines and characters of a text.",
            parameters_schema=SCHEMA,
            http_hosts=[],
        )

    def invoke(self, context: types.InvokeContext, arguments: str) -> str:
        try:
            args = json.loads(arguments)
        except ValueError as e:
            raise Err(types.ToolError_InvalidArguments(f"arguments are not JSON: {e}"))
        text = args.get("text") if isinstance(args, dict) else None
        if not isinstance(text, str):
            raise Err(types.ToolError_InvalidArguments("`text` (a string) is required"))
        log.log(log.Level.INFO, f"word_count for agent {context.agent_id}")
        return json.dumps(
            {"words": len(text.split()), "lines": len(text.splitlines()), "chars": len(text)}
        )
