"""Any OpenAI-compatible chat-completions server (OpenAI, vLLM, llama.cpp's server, Ollama...).

Always asks for a stream, so pieces arrive as they are made, and an answer that is no
longer wanted (its client left) stops between two pieces: leaving the stream closes the
upstream connection (a response not read to its end is never reused), which is how an
OpenAI-compatible server learns to stop generating. Connection failures, 429 and 5xx
before the first piece are retried with exponential backoff (honouring Retry-After); after
that, or once the retries are spent, the failure becomes a GeneratorError: of kind
"timeout" when the upstream did not answer in time, "upstream_error" otherwise, with the
upstream's own message.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Iterator

import httpx
from pydantic import Field

from citeqa.qa.generators.chat_model import ChatModelGenerator, ChatModelOptions
from citeqa.qa.types import GeneratorError, GeneratorErrorKind

# Upstream HTTP statuses (the upstream's protocol, not ours): worth another try; and the
# ones that say the upstream ran out of time.
RETRYABLE = {408, 409, 425, 429, 500, 502, 503, 504}
TIMED_OUT = {408, 504}


class OpenAIOptions(ChatModelOptions):
    model: str | None = Field(None, description="Upstream model name (default: the configured one).")


class OpenAICompatGenerator(ChatModelGenerator):
    name = "openai"
    description = "Any OpenAI-compatible chat-completions server (set CITEQA_OPENAI_BASE_URL)."
    Options = OpenAIOptions

    def __init__(self, base_url: str | None = None, model: str = "default", api_key: str | None = None,
                 timeout_s: float = 60.0, connect_timeout_s: float = 5.0, retries: int = 2, backoff_s: float = 0.5,
                 context: int = 4096, prompt: str = "cited_answer", transport: httpx.BaseTransport | None = None,
                 **unknown: Any):
        if unknown:
            raise TypeError(f"openai has no setting {', '.join(sorted(unknown))}")
        super().__init__(prompt)
        self.base_url = base_url.rstrip("/") if base_url else None
        self.model = model
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.context_window = context
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s), headers=headers,
                                    transport=transport)

    def unavailable(self) -> str | None:
        if not self.base_url:
            return "no server configured: set CITEQA_OPENAI_BASE_URL (e.g. http://127.0.0.1:8080/v1)"
        return None

    def _complete(self, messages: list[dict[str, str]], options: ChatModelOptions,
                  usage: dict[str, float], stopped: threading.Event) -> Iterator[str]:
        reason = self.unavailable()
        if reason:
            raise GeneratorError("unavailable", reason)
        payload: dict[str, Any] = {
            "model": getattr(options, "model", None) or self.model, "messages": messages, "stream": True,
            "temperature": options.temperature, "top_p": options.top_p, "max_tokens": options.max_tokens,
        }
        if options.seed is not None:
            payload["seed"] = options.seed
        url = f"{self.base_url}/chat/completions"
        deadline = time.monotonic() + self.timeout_s
        for attempt in range(self.retries + 1):
            if stopped.is_set():
                return  # no longer wanted: no (further) request upstream
            last = attempt == self.retries
            yielded = False
            try:
                with self._client.stream("POST", url, json=payload) as response:
                    if response.status_code >= 400:
                        response.read()
                        message = _upstream_message(response)
                        if response.status_code in RETRYABLE and not last:
                            self._sleep(attempt, response.headers.get("retry-after"), deadline, stopped)
                            continue
                        kind: GeneratorErrorKind = "timeout" if response.status_code in TIMED_OUT else "upstream_error"
                        raise GeneratorError(kind, f"upstream {response.status_code}: {message}")
                    for piece in _pieces(response, usage):
                        if time.monotonic() > deadline:
                            raise GeneratorError("timeout", f"upstream took longer than {self.timeout_s:g} s")
                        yielded = True
                        yield piece
                    return
            except httpx.TimeoutException as exc:
                if yielded or last:
                    raise GeneratorError("timeout", f"upstream did not answer within {self.timeout_s:g} s "
                                                    f"({type(exc).__name__})") from exc
            except httpx.TransportError as exc:
                if yielded or last:
                    raise GeneratorError("upstream_error",
                                         f"cannot reach {self.base_url}: {exc or type(exc).__name__}") from exc
            self._sleep(attempt, None, deadline, stopped)

    def _sleep(self, attempt: int, retry_after: str | None, deadline: float, stopped: threading.Event) -> None:
        """The backoff before another try; cut short when the answer is no longer wanted."""
        try:
            wait = float(retry_after) if retry_after else self.backoff_s * 2 ** attempt
        except ValueError:
            wait = self.backoff_s * 2 ** attempt
        left = deadline - time.monotonic()
        if left <= 0:
            raise GeneratorError("timeout", f"upstream did not answer within {self.timeout_s:g} s")
        stopped.wait(max(0.0, min(wait, 10.0, left)))


def _pieces(response: httpx.Response, usage: dict[str, float]) -> Iterator[str]:
    """Content pieces from an SSE stream, or from one JSON body when the server ignored
    ``stream``."""
    if "text/event-stream" not in response.headers.get("content-type", ""):
        response.read()
        body = _json(response.text)
        _check_error(body)
        yield _content(body, "message")
        _record_usage(body, usage)
        return
    for line in response.iter_lines():
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return
        event = _json(data)
        _check_error(event)
        _record_usage(event, usage)
        piece = _content(event, "delta")
        if piece:
            yield piece


def _json(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GeneratorError("upstream_error", f"upstream sent something that is not JSON: {text[:200]!r}") from exc
    if not isinstance(value, dict):
        raise GeneratorError("upstream_error", f"upstream sent unexpected JSON: {text[:200]!r}")
    return value


def _check_error(body: dict[str, Any]) -> None:
    if "error" in body:
        error = body["error"]
        message = error.get("message", error) if isinstance(error, dict) else error
        raise GeneratorError("upstream_error", f"upstream error: {message}")


def _content(body: dict[str, Any], key: str) -> str:
    choices = body.get("choices") or [{}]
    part = choices[0].get(key) or {}
    content = part.get("content") if isinstance(part, dict) else None
    return content if isinstance(content, str) else ""


def _record_usage(body: dict[str, Any], usage: dict[str, float]) -> None:
    reported = body.get("usage")
    if isinstance(reported, dict) and isinstance(reported.get("completion_tokens"), int):
        usage["completion_tokens"] = reported["completion_tokens"]


def _upstream_message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:500]
        if error:
            return str(error)[:500]
    except (ValueError, AttributeError):
        pass
    return response.text[:500] or response.reason_phrase
