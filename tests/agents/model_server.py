"""A scripted stand-in for the model APIs, on 127.0.0.1, for driving REAL agent binaries in tests.

This is the one stand-in in the agent tests: the real APIs cannot be reached from CI, so the real
Claude Code / Codex / aider / opencode binaries talk to this server instead. It speaks just enough of

* the Anthropic Messages API (`POST /v1/messages`, streaming SSE: message_start,
  content_block_start/delta/stop with `text_delta` and `tool_use` + `input_json_delta`,
  message_delta with stop_reason, message_stop; plus non-streaming JSON and count_tokens), as
  Claude Code uses it with `ANTHROPIC_BASE_URL`;
* the OpenAI Responses API (`POST /v1/responses`, streaming SSE: response.created,
  response.output_item.added/done, response.output_text.delta, response.completed), as Codex uses it
  with a custom `model_provider` (`wire_api = "responses"`, `base_url = http://127.0.0.1:PORT/v1`);
* the OpenAI Chat Completions API (`POST /v1/chat/completions`, streaming or not) for aider and
  opencode's openai-compatible provider;
* the Gemini API (`POST /v1beta/models/M:streamGenerateContent?alt=sse`, `:generateContent`,
  `:countTokens`), as Gemini CLI uses it with `GOOGLE_GEMINI_BASE_URL`; its JSON-mode routing
  calls get a JSON answer;
* `GET /v1/models`.

What it answers is a *script*: a list of rules, each `{"match": "substring of the user's prompt"
(or "*"), "steps": [...]}`. A step is one model turn:

    {"bash": "echo hello > proof.txt"}          a shell tool call (Claude `Bash`, Codex
                                                 `exec_command`/`shell`, Gemini `run_shell_command`,
                                                 chat `bash`/`shell`)
    {"bash": "...", "escalated": true}           Codex: ask to run outside the sandbox (approval)
    {"tool": "AskUserQuestion", "input": {...}}  Claude: any other offered tool, with this input
    {"text": "All done."}                        a final text answer (ends the turn)
    {"error": 429, "message": "..."}             an HTTP error (429 usage limit, 401 auth, 500 api);
                                                 "headers": {...} adds response headers, "reset_in": S
                                                 Anthropic's unified rate-limit headers (a usage limit)
    {"sleep": 5, ...}                            delay before answering (a slow turn / a hang)

A string in a step may name what orch's brief says: {inbox} {agent} {db} {thread} {worktree} {run}
{task} are filled from the prompt, so a script can play an orch worker (claim, update, done).

Which step a request gets is worked out from the request itself, so the server keeps no session
state and survives the agents' retries: step = number of tool results after the user's last plain
text message. A request without tools (Claude's title call, Codex's title turn) gets a short text.
Past the end of the steps, the last text (or "Done.") is repeated.

Run it: `python tests/agents/model_server.py --script script.json [--port 0]`; it prints
`PORT <n>` on its first line. In tests: `ModelServer(script).start()` / `.stop()`; `.requests`
records every request (path, body) for assertions.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_SCRIPT: list[dict[str, Any]] = [
    {"match": "*", "steps": [{"bash": "echo hello > proof.txt"}, {"text": "Wrote hello into proof.txt."}]},
]
TITLE_TEXT = "Scripted task"


# -- choosing the step ------------------------------------------------------------------------
def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for c in content:
            if isinstance(c, dict) and c.get("type") in ("text", "input_text", "output_text"):
                parts.append(str(c.get("text", "")))
        return "\n".join(parts)
    return ""


def anthropic_progress(body: dict[str, Any]) -> tuple[str, int]:
    """(the user's last plain prompt, tool results since it) from a Messages API request."""
    prompt, n = "", 0
    for m in body.get("messages", []):
        if m.get("role") != "user":
            continue
        content = m.get("content")
        blocks = content if isinstance(content, list) else [{"type": "text", "text": content}]
        results = sum(1 for b in blocks if isinstance(b, dict) and b.get("type") == "tool_result")
        if results:
            n += 1
            continue
        # Claude Code sends <system-reminder> blocks as user text; they are not a new prompt
        real = [str(b.get("text", "")) for b in blocks if isinstance(b, dict) and b.get("type") == "text"
                and str(b.get("text", "")).strip() and not str(b.get("text", "")).lstrip().startswith("<system-reminder>")]
        if real:  # the last block: after an API error Claude merges the next prompt into the same message
            prompt, n = real[-1], 0
    return prompt, n


def responses_progress(body: dict[str, Any]) -> tuple[str, int]:
    """(the user's last prompt, tool outputs since it) from a Responses API request."""
    prompt, n = "", 0
    items = body.get("input", [])
    if isinstance(items, str):
        return items, 0
    for it in items:
        t = it.get("type", "message")
        if t == "message" and it.get("role") == "user":
            text = _text_of(it.get("content"))
            # Codex injects <environment_context> / AGENTS.md instructions as user messages
            if text.strip() and not text.lstrip().startswith("<"):
                prompt, n = text, 0
        elif t in ("function_call_output", "custom_tool_call_output", "local_shell_call_output"):
            n += 1
    return prompt, n


def chat_progress(body: dict[str, Any]) -> tuple[str, int]:
    prompt, n = "", 0
    for m in body.get("messages", []):
        if m.get("role") == "user":
            text = _text_of(m.get("content"))
            if text.strip():
                prompt, n = text, 0
        elif m.get("role") == "tool":
            n += 1
    return prompt, n


# What a scripted worker needs from orch's brief (store/brief.py): {inbox} {agent} {db} {thread} ...
BRIEF_VARS = {"inbox": r"Use the inbox CLI \((\S+)\)", "agent": r"to act as (\S+) on SQLite DB",
              "db": r"on SQLite DB (\S+?)\.\s", "thread": r"thread_id: (\S+)", "worktree": r"worktree_path: (\S+)",
              "run": r"run_id: (\S+)", "task": r"task_id: (\S+)"}


def fill(value: str, prompt: str) -> str:
    """Replace {inbox} {agent} {db} {thread} {worktree} {run} {task} with what the brief says."""
    def sub(m: re.Match[str]) -> str:
        found = re.search(BRIEF_VARS[m.group(1)], prompt)
        return found.group(1) if found else m.group(0)

    return re.sub(r"\{(" + "|".join(BRIEF_VARS) + r")\}", sub, value)


def gemini_progress(body: dict[str, Any]) -> tuple[str, int]:
    """(the user's last prompt, function responses since it) from a Gemini generateContent request."""
    prompt, n = "", 0
    for c in body.get("contents", []):
        if c.get("role", "user") != "user":
            continue
        parts = c.get("parts") or []
        if any("functionResponse" in p for p in parts):
            n += 1
            continue
        texts = [str(p.get("text", "")) for p in parts if p.get("text", "").strip()]
        real = [t for t in texts if not t.lstrip().startswith("<")]
        if real:
            prompt, n = real[-1], 0
    return prompt, n


def gemini_response(step: dict[str, Any], tools: list[dict[str, Any]], json_mode: bool) -> dict[str, Any]:
    names = {f.get("name") for t in tools or [] for f in t.get("functionDeclarations", [])}
    if json_mode:  # Gemini CLI's routing and next-speaker checks want JSON back
        parts = [{"text": json.dumps({"reasoning": "scripted", "model_choice": "flash", "next_speaker": "user"})}]
    elif "bash" in step and "run_shell_command" in names:
        parts = [{"functionCall": {"name": "run_shell_command",
                                   "args": {"command": step["bash"], "description": "Run a command"}}}]
    else:
        parts = [{"text": step.get("text") or TITLE_TEXT}]
    return {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 20, "totalTokenCount": 32},
            "modelVersion": "fake-model"}


class Script:
    def __init__(self, rules: list[dict[str, Any]] | None = None) -> None:
        self.rules = rules or DEFAULT_SCRIPT

    def step(self, prompt: str, n: int) -> dict[str, Any]:
        step = self._step(prompt, n)
        return {k: fill(v, prompt) if isinstance(v, str) else v for k, v in step.items()}

    def _step(self, prompt: str, n: int) -> dict[str, Any]:
        for rule in self.rules:
            m = rule.get("match", "*")
            if m == "*" or m in prompt:
                steps = rule.get("steps") or [{"text": "Done."}]
                if n < len(steps):
                    return steps[n]
                texts = [s for s in steps if "text" in s]
                return texts[-1] if texts else {"text": "Done."}
        return {"text": "Done."}


# -- the wire formats -------------------------------------------------------------------------
def _sse(event: str | None, data: dict[str, Any]) -> bytes:
    head = f"event: {event}\n" if event else ""
    return (head + "data: " + json.dumps(data) + "\n\n").encode()


def anthropic_call(step: dict[str, Any], tools: list[dict[str, Any]]) -> tuple[str, dict[str, Any]] | None:
    """(tool name, input) for a bash step or a generic {"tool": NAME, "input": {...}} step, if offered."""
    names = {t.get("name") for t in tools}
    if "bash" in step and "Bash" in names:
        return "Bash", {"command": step["bash"], "description": step.get("description", "Run a command")}
    if "tool" in step and step["tool"] in names:
        return step["tool"], dict(step.get("input") or {})
    return None


def anthropic_events(step: dict[str, Any], model: str, tools: list[dict[str, Any]]) -> list[bytes]:
    mid = "msg_" + uuid.uuid4().hex[:24]
    usage = {"input_tokens": 12, "output_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    out = [_sse("message_start", {"type": "message_start", "message": {
        "id": mid, "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": usage}})]
    call = anthropic_call(step, tools)
    if call:
        tid = "toolu_" + uuid.uuid4().hex[:24]
        name, args = call[0], json.dumps(call[1])
        out.append(_sse("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {
            "type": "tool_use", "id": tid, "name": name, "input": {}}}))
        out.append(_sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {
            "type": "input_json_delta", "partial_json": args}}))
        stop = "tool_use"
    else:
        text = step.get("text") or (f"(cannot run `{step['bash']}`: no Bash tool offered)" if "bash" in step
                                    else "Done.")
        out.append(_sse("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {
            "type": "text", "text": ""}}))
        out.append(_sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {
            "type": "text_delta", "text": text}}))
        stop = "end_turn"
    out.append(_sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
    out.append(_sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                                      "usage": {"output_tokens": 20}}))
    out.append(_sse("message_stop", {"type": "message_stop"}))
    return out


def anthropic_json(step: dict[str, Any], model: str, tools: list[dict[str, Any]]) -> dict[str, Any]:
    call = anthropic_call(step, tools)
    if call:
        content = [{"type": "tool_use", "id": "toolu_" + uuid.uuid4().hex[:24], "name": call[0], "input": call[1]}]
        stop = "tool_use"
    else:
        content = [{"type": "text", "text": step.get("text") or TITLE_TEXT}]
        stop = "end_turn"
    return {"id": "msg_" + uuid.uuid4().hex[:24], "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": stop, "stop_sequence": None,
            "usage": {"input_tokens": 12, "output_tokens": 20}}


def _tool_names(tools: list[dict[str, Any]]) -> set[str]:
    names = set()
    for t in tools or []:
        names.add(t.get("name") or (t.get("function") or {}).get("name") or t.get("type"))
    return names


def responses_call_item(step: dict[str, Any], tools: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The function_call output item for a bash step, in the shape of the shell tool Codex offers."""
    names = _tool_names(tools)
    cmd = step["bash"]
    if "exec_command" in names:
        name, args = "exec_command", {"cmd": cmd}
    elif "shell_command" in names:
        name, args = "shell_command", {"command": cmd}
    elif "shell" in names:
        name, args = "shell", {"command": ["bash", "-lc", cmd]}
    else:
        return None
    if step.get("escalated"):
        args["sandbox_permissions"] = "require_escalated"
        args["justification"] = step.get("justification", "Needs to write outside the sandbox.")
    return {"type": "function_call", "id": "fc_" + uuid.uuid4().hex[:24], "call_id": "call_" + uuid.uuid4().hex[:24],
            "name": name, "arguments": json.dumps(args), "status": "completed"}


def responses_events(step: dict[str, Any], model: str, tools: list[dict[str, Any]]) -> list[bytes]:
    rid = "resp_" + uuid.uuid4().hex[:24]
    base = {"id": rid, "object": "response", "created_at": int(time.time()), "model": model, "status": "in_progress",
            "output": []}
    out = [_sse("response.created", {"type": "response.created", "response": base})]
    item = responses_call_item(step, tools) if "bash" in step else None
    if item is None:
        text = step.get("text") or (f"(cannot run `{step['bash']}`: no shell tool offered)" if "bash" in step
                                    else TITLE_TEXT)
        msg_id = "msg_" + uuid.uuid4().hex[:24]
        item = {"type": "message", "id": msg_id, "role": "assistant", "status": "completed",
                "content": [{"type": "output_text", "text": text, "annotations": []}]}
        out.append(_sse("response.output_item.added", {"type": "response.output_item.added", "output_index": 0,
                                                       "item": {**item, "content": [], "status": "in_progress"}}))
        out.append(_sse("response.output_text.delta", {"type": "response.output_text.delta", "item_id": msg_id,
                                                       "output_index": 0, "content_index": 0, "delta": text}))
    else:
        out.append(_sse("response.output_item.added", {"type": "response.output_item.added", "output_index": 0,
                                                       "item": item}))
    out.append(_sse("response.output_item.done", {"type": "response.output_item.done", "output_index": 0,
                                                  "item": item}))
    usage = {"input_tokens": 12, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 20,
             "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 32}
    out.append(_sse("response.completed", {"type": "response.completed", "response": {
        **base, "status": "completed", "output": [item], "usage": usage}}))
    return out


def chat_message(step: dict[str, Any], tools: list[dict[str, Any]]) -> dict[str, Any]:
    names = _tool_names(tools)
    shell = next((n for n in ("bash", "shell", "Bash", "run_shell_command") if n in names), None)
    if "bash" in step and shell:
        return {"role": "assistant", "content": None, "tool_calls": [{
            "id": "call_" + uuid.uuid4().hex[:24], "type": "function",
            "function": {"name": shell, "arguments": json.dumps({"command": step["bash"],
                                                                 "description": "Run a command"})}}]}
    text = step.get("text") or (f"```bash\n{step['bash']}\n```" if "bash" in step else TITLE_TEXT)
    return {"role": "assistant", "content": text}


# -- the server ---------------------------------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args: Any) -> None:  # quiet; requests are recorded instead
        pass

    def _send_json(self, status: int, doc: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(doc).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_sse(self, chunks: list[bytes]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        for c in chunks:
            self.wfile.write(c)
            self.wfile.flush()
        self.close_connection = True

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        self.server.record("GET", self.path, None)
        if self.path.rstrip("/").endswith("/models"):
            self._send_json(200, {"object": "list", "data": [
                {"id": "fake-model", "object": "model", "created": 0, "owned_by": "orch-tests",
                 "type": "model", "display_name": "Fake model"}], "has_more": False})
        else:
            self._send_json(404, {"error": {"type": "not_found_error", "message": f"no {self.path} here"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        path = self.path.split("?", 1)[0].rstrip("/")
        self.server.record("POST", path, body)
        model = str(body.get("model") or "fake-model")
        tools = body.get("tools") or []
        if path.endswith("/messages/count_tokens"):
            return self._send_json(200, {"input_tokens": 12})
        if path.endswith("/messages"):
            prompt, n = anthropic_progress(body)
            step = self.server.script.step(prompt, n) if tools else {"text": TITLE_TEXT}
            if self._error_or_wait(step, "anthropic"):
                return
            if body.get("stream"):
                return self._send_sse(anthropic_events(step, model, tools))
            return self._send_json(200, anthropic_json(step, model, tools))
        if path.endswith("/responses"):
            prompt, n = responses_progress(body)
            step = self.server.script.step(prompt, n) if tools else {"text": TITLE_TEXT}
            if self._error_or_wait(step, "openai"):
                return
            return self._send_sse(responses_events(step, model, tools))
        if ":countTokens" in path:
            return self._send_json(200, {"totalTokens": 12})
        if ":generateContent" in path or ":streamGenerateContent" in path:
            prompt, n = gemini_progress(body)
            cfg = body.get("generationConfig") or {}
            json_mode = cfg.get("responseMimeType") == "application/json" or bool(cfg.get("responseJsonSchema")
                                                                                 or cfg.get("responseSchema"))
            step = self.server.script.step(prompt, n) if not json_mode else {}
            if self._error_or_wait(step, "gemini"):
                return
            doc = gemini_response(step, body.get("tools") or [], json_mode)
            if ":streamGenerateContent" in path:
                return self._send_sse([("data: " + json.dumps(doc) + "\r\n\r\n").encode()])
            return self._send_json(200, doc)
        if path.endswith("/chat/completions"):
            prompt, n = chat_progress(body)
            step = self.server.script.step(prompt, n) if tools or prompt else {"text": TITLE_TEXT}
            if self._error_or_wait(step, "openai"):
                return
            msg = chat_message(step, tools)
            cid = "chatcmpl-" + uuid.uuid4().hex[:24]
            finish = "tool_calls" if msg.get("tool_calls") else "stop"
            usage = {"prompt_tokens": 12, "completion_tokens": 20, "total_tokens": 32}
            if body.get("stream"):
                delta = dict(msg)
                if delta.get("tool_calls"):
                    delta["tool_calls"] = [{**tc, "index": i} for i, tc in enumerate(delta["tool_calls"])]
                chunks = [_sse(None, {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()),
                                      "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}),
                          _sse(None, {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()),
                                      "model": model, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}],
                                      "usage": usage}),
                          b"data: [DONE]\n\n"]
                return self._send_sse(chunks)
            return self._send_json(200, {"id": cid, "object": "chat.completion", "created": int(time.time()),
                                         "model": model, "choices": [{"index": 0, "message": msg,
                                                                      "finish_reason": finish}], "usage": usage})
        self._send_json(404, {"error": {"type": "not_found_error", "message": f"no {path} here"}})

    def _error_or_wait(self, step: dict[str, Any], flavour: str) -> bool:
        if step.get("sleep"):
            time.sleep(float(step["sleep"]))
        status = step.get("error")
        if not status:
            return False
        message = step.get("message") or {429: "rate limit exceeded", 401: "invalid x-api-key",
                                          529: "Overloaded"}.get(int(status), "internal server error")
        headers = {str(k): str(v) for k, v in (step.get("headers") or {}).items()}
        if step.get("reset_in"):  # Anthropic's unified rate-limit headers: a usage limit that resets later
            headers.update({"anthropic-ratelimit-unified-status": "rejected",
                            "anthropic-ratelimit-unified-reset": str(int(time.time() + float(step["reset_in"]))),
                            "anthropic-ratelimit-unified-representative-claim": "five_hour",
                            "retry-after": str(int(float(step["reset_in"])))})
        if flavour == "gemini":
            status_name = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                           429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE"}.get(int(status), "INTERNAL")
            self._send_json(int(status), {"error": {"code": int(status), "message": message, "status": status_name}},
                            headers)
        elif flavour == "anthropic":
            kind = {429: "rate_limit_error", 401: "authentication_error", 529: "overloaded_error"}.get(
                int(status), "api_error")
            self._send_json(int(status), {"type": "error", "error": {"type": kind, "message": message}}, headers)
        else:
            kind = step.get("code") or {429: "rate_limit_exceeded", 401: "invalid_api_key"}.get(int(status), "server_error")
            self._send_json(int(status), {"error": {"type": kind, "code": kind, "message": message}}, headers)
        return True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], script: Script) -> None:
        super().__init__(addr, _Handler)
        self.script = script
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def record(self, method: str, path: str, body: Any) -> None:
        with self._lock:
            self.requests.append({"method": method, "path": path, "body": body, "at": time.time()})


class ModelServer:
    """In-process use: `with ModelServer(rules) as srv: srv.url` (http://127.0.0.1:PORT)."""

    def __init__(self, rules: list[dict[str, Any]] | None = None, port: int = 0) -> None:
        self._server = _Server(("127.0.0.1", port), Script(rules))
        self._thread = threading.Thread(target=self._server.serve_forever, name="model-server", daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[dict[str, Any]]:
        return list(self._server.requests)

    def set_script(self, rules: list[dict[str, Any]]) -> None:
        self._server.script = Script(rules)

    def start(self) -> "ModelServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "ModelServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--script", metavar="FILE", help="JSON list of rules (default: write proof.txt, then say so)")
    p.add_argument("--log", metavar="FILE", help="append every request as one JSON line")
    a = p.parse_args(argv)
    rules = json.load(open(a.script)) if a.script else None
    srv = _Server(("127.0.0.1", a.port), Script(rules))
    if a.log:
        log = open(a.log, "a")
        orig = srv.record

        def record(method: str, path: str, body: Any) -> None:
            orig(method, path, body)
            log.write(json.dumps({"method": method, "path": path, "body": body}) + "\n")
            log.flush()
        srv.record = record  # type: ignore[method-assign]
    print(f"PORT {srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())


def codex_provider_config(url: str) -> str:
    """A Codex config.toml whose model provider is this server (no login needed; env_key
    FAKE_API_KEY must be set in the agent's environment)."""
    return ('model = "fake-model"\nmodel_provider = "fake"\n\n[model_providers.fake]\nname = "fake"\n'
            f'base_url = "{url}/v1"\nwire_api = "responses"\nenv_key = "FAKE_API_KEY"\n')
