"""The official `openai` Python SDK against chela's /v1 (e2e.rs runs this).

argv: base URL (http://127.0.0.1:PORT/v1), the gateway token. Prints one
line per check and `ok <n> checks`; any failure raises (exit status 1).
"""
import sys

import openai

base, token = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=base, api_key=token, max_retries=0)
checks = 0


def check(name, cond, detail=""):
    global checks
    if not cond:
        raise AssertionError(f"{name}: {detail}")
    checks += 1
    print(f"ok {name}")


def ask(model, text="hi", **kw):
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": text}], **kw)


ids = [m.id for m in client.models.list()]
check("models.list", ids == ["openclaw", "openclaw/default", "openclaw/work", "openclaw/support"], ids)
check("models.retrieve", client.models.retrieve("openclaw/support").id == "openclaw/support")
try:
    client.models.retrieve("openclaw/nobody")
    check("models.retrieve unknown", False, "no error")
except openai.NotFoundError as e:
    check("models.retrieve unknown", e.body["code"] == "model_not_found", e.body)

# Every alias reaches its agent; the answer names the model as asked.
expect = {"openclaw": "Atlas", "openclaw/default": "Atlas", "openclaw/work": "Atlas", "openclaw/support": "Sage",
          "openclaw:support": "Sage", "agent:support": "Sage", "chela:support": "Sage", "chela/default": "Atlas"}
for model, name in expect.items():
    r = ask(model, user="sdk")
    text = r.choices[0].message.content
    check(f"completion {model}", r.model == model and text.startswith(f"{name} ("), (r.model, text))
    check(f"usage {model}", r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens > 0, r.usage)

# Streaming, with and without the trailing usage chunk.
for include_usage in (False, True):
    opts = {"stream_options": {"include_usage": True}} if include_usage else {}
    chunks = list(ask("openclaw/support", "stream please", stream=True, **opts))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    check(f"stream text (usage={include_usage})", text.startswith("Sage (") and len(chunks) > 4, text)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    check(f"stream stop (usage={include_usage})", finishes == ["stop"], finishes)
    last = chunks[-1]
    if include_usage:
        check("stream usage chunk", last.choices == [] and last.usage.total_tokens > 0, last)
    else:
        check("no usage chunk unasked", all(c.usage is None for c in chunks), last)

# The headers OpenClaw documents.
r = ask("openclaw", extra_headers={"x-openclaw-agent-id": "support"})
check("x-openclaw-agent-id", r.choices[0].message.content.startswith("Sage ("), r.choices[0].message.content)
r = ask("openclaw/work", "model override", user="override", extra_headers={"x-openclaw-model": "offline/other"})
check("x-openclaw-model accepted", r.choices[0].message.content.startswith("Atlas ("))
r = ask("openclaw/work", extra_headers={"x-openclaw-message-channel": "telegram"})
check("x-openclaw-message-channel accepted", r.choices[0].message.content.startswith("Atlas ("))


def refused(name, exc, code, call):
    try:
        call()
        check(name, False, "no error")
    except exc as e:
        err = e.body
        check(name, isinstance(err, dict) and err.get("code") == code and err.get("message") and err.get("type"), err)


r = ask("openclaw/work", temperature=0.2, top_p=0.9, max_completion_tokens=64, stop=["END"], seed=7)
check("sampling fields accepted", r.choices[0].message.content.startswith("Atlas ("), r)
refused("temperature out of range", openai.BadRequestError, None, lambda: ask("openclaw", temperature=3))
refused("provider model as model", openai.BadRequestError, "invalid_model", lambda: ask("gpt-4o"))
refused("unknown agent", openai.NotFoundError, "model_not_found", lambda: ask("openclaw/nobody"))
refused("unconfigured provider override", openai.BadRequestError, "invalid_model",
        lambda: ask("openclaw", extra_headers={"x-openclaw-model": "nosuch/model"}))
refused("reserved session namespace", openai.BadRequestError, None,
        lambda: ask("openclaw", extra_headers={"x-openclaw-session-key": "cron:nightly"}))
bad = openai.OpenAI(base_url=base, api_key="wrong", max_retries=0)
refused("wrong key", openai.AuthenticationError, "invalid_api_key", lambda: bad.models.list())

print(f"ok {checks} checks")
