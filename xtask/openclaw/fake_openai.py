"""A minimal OpenAI chat-completions server for recording an OpenClaw state dir (record-state.sh):
answers every request with "reply <n> to: <last user text>", streamed or not. argv: port."""
import json, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        body = json.dumps({"object": "list", "data": [{"id": "gpt-rec", "object": "model"}]}).encode()
        self.send_response(200); self.send_header("content-type", "application/json"); self.send_header("content-length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def do_POST(self):
        n = int(self.headers.get("content-length", 0)); req = json.loads(self.rfile.read(n) or b"{}")
        msgs = req.get("messages", [])
        users = [m for m in msgs if m.get("role") == "user"]
        last = users[-1]["content"] if users else ""
        if isinstance(last, list): last = " ".join(p.get("text", "") for p in last if isinstance(p, dict))
        text = f"reply {len(users)} to: {str(last)[-60:]}"
        
        if req.get("stream"):
            self.send_response(200); self.send_header("content-type", "text/event-stream"); self.end_headers()
            for piece in [text[:10], text[10:]]:
                c = {"id": "c1", "object": "chat.completion.chunk", "created": int(time.time()), "model": req.get("model"), "choices": [{"index": 0, "delta": {"role": "assistant", "content": piece}, "finish_reason": None}]}
                self.wfile.write(f"data: {json.dumps(c)}\n\n".encode())
            c = {"id": "c1", "object": "chat.completion.chunk", "created": int(time.time()), "model": req.get("model"), "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}
            self.wfile.write(f"data: {json.dumps(c)}\n\ndata: [DONE]\n\n".encode())
        else:
            body = json.dumps({"id": "c1", "object": "chat.completion", "created": int(time.time()), "model": req.get("model"), "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}).encode()
            self.send_response(200); self.send_header("content-type", "application/json"); self.send_header("content-length", str(len(body))); self.end_headers(); self.wfile.write(body)

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
