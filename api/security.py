"""Who may do what, how often, for how long: API keys, per-key rate limits, time limits.

One ASGI middleware in front of every route, so a new route cannot forget its check:
- Writes (POST/PUT/PATCH/DELETE under /v1/documents) need a key with the ``write`` scope;
  creating and deleting collections (POST/PUT/PATCH/DELETE under /v1/collections) and
  everything under /v1/keys need ``admin``; everything else under /v1 (listing
  collections too) needs ``read`` when ``auth_reads`` is set. Health checks, the
  playground page and the API docs are public.
- Scopes are checked literally: ``admin`` does not imply ``read`` or ``write`` (an admin
  who also reads and writes holds all three; ``citeqa keys create --scope admin`` may
  give them). Key management (/v1/keys) needs an admin key whatever ``auth`` says: keys
  are credentials, and the first one switches ``auto`` auth on, so an anonymous caller
  could otherwise mint one and lock everybody else out. The first admin key comes from
  ``citeqa keys create``.
- A key may be limited to collections. The middleware leaves the verified key in the
  request's state (``request_key``); routes ask ``may_see`` before touching a collection
  and answer 404 for one the key may not see, as for a collection that does not exist.
- 401 when no key or an unknown/revoked key is presented, 403 when the key lacks the
  scope. Keys come as ``Authorization: Bearer`` (what OpenAI clients send) or ``X-API-Key``;
  a request that carries several credentials (two Authorization headers, Bearer and
  X-API-Key...) gets 400: which one was meant is not guessed.
- Auth is ``on``, ``off`` or ``auto``: on when the server binds a non-loopback address or
  any key exists (creating the first key turns it on; no restart needed). Whether an
  address is loopback is decided from the addresses it stands for: "", 0.0.0.0 and :: bind
  every interface, and a name counts as loopback only if all it resolves to is.
- A token bucket per key (or per client address without one): 429 with Retry-After. A key's
  bucket is kept by its KeyStore (in PostgreSQL, shared by every replica); a client
  address's bucket stays in this process (a row per anonymous address is not worth it).
- A request that has not started its response within ``request_timeout_s`` gets 504.
"""

from __future__ import annotations

import ipaddress
import math
import socket
import time
from dataclasses import dataclass
from typing import Literal

import anyio
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from citeqa.api.errors import send_error
from citeqa.api.keys import ApiKey, KeyStore, TokenBuckets

_HOW_TO_SEND_A_KEY = ("send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'; "
                      "create one with `citeqa keys create`")
# 401s name the scheme, as RFC 9110 asks: OpenAI clients send their key as a Bearer token.
_CHALLENGE = (b"www-authenticate", b'Bearer realm="citeqa"')
PUBLIC_PATHS = {"/", "/healthz", "/readyz", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
KEYS_PATH = "/v1/keys"
COLLECTIONS_PATH = "/v1/collections"
Needed = Literal["read", "write", "admin"]


def _ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An IP address literal (``::1``, ``[::1]``, ``fe80::1%eth0``, ``127.0.0.2``), or None."""
    try:
        ip = ipaddress.ip_address(address.strip("[]").partition("%")[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped  # ::ffff:127.0.0.1 is loopback; Python < 3.13 says it is not
    return ip


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` (an address or a name) exposes the server to this machine
    alone. "" binds every interface, as do 0.0.0.0 and ::; a name is loopback only when every
    address it resolves to is; a name that does not resolve counts as public (the safe side)."""
    if not host.strip():
        return False
    ip = _ip(host)
    if ip is not None:
        return ip.is_loopback
    try:
        found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return False
    ips = [_ip(str(info[4][0])) for info in found]
    return bool(ips) and all(ip is not None and ip.is_loopback for ip in ips)


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def scope_for(method: str, path: str) -> Needed | None:
    """The scope a request needs, or None for public paths."""
    if path in PUBLIC_PATHS or path.startswith("/static/"):
        return None
    if _under(path, KEYS_PATH):
        return "admin"
    if _under(path, COLLECTIONS_PATH) and method in WRITE_METHODS:
        return "admin"
    if path.startswith("/v1/documents") and method in WRITE_METHODS:
        return "write"
    return "read"


def key_always_needed(path: str) -> bool:
    """Paths that need a key even when auth is off (see the module docstring)."""
    return _under(path, KEYS_PATH)


def request_key(request: Request) -> ApiKey | None:
    """The key the request was verified with; None when none was presented, auth is off
    or the path is public."""
    key: ApiKey | None = getattr(request.state, "api_key", None)
    return key


def may_see(key: ApiKey | None, collection: str) -> bool:
    """Whether a request made with ``key`` may see ``collection``: a request without a key
    (auth off, or anonymous reads allowed) and an unlimited key see every collection."""
    return key is None or key.collections is None or collection in key.collections


@dataclass(frozen=True)
class SecurityPolicy:
    auth: Literal["auto", "on", "off"] = "auto"
    host: str = "127.0.0.1"
    auth_reads: bool = False
    key_rate_per_s: float = 10.0  # default for keys without a rate of their own; 0 = none
    key_burst: int = 40
    anonymous_rate_per_s: float = 0.0  # per client address, when no key is presented
    anonymous_burst: int = 40
    request_timeout_s: float = 300.0


class SecurityMiddleware:
    def __init__(self, app: ASGIApp, keys: KeyStore, policy: SecurityPolicy):
        self.app = app
        self.keys = keys
        self.policy = policy
        self.buckets = TokenBuckets()  # callers without a key, by address
        self.public = not is_loopback(policy.host)  # once: a name may take a DNS lookup
        self._has_keys = (0.0, False)  # (checked at, result): auto mode looks again each second

    async def auth_on(self) -> bool:
        if self.policy.auth != "auto":
            return self.policy.auth == "on"
        if self.public:
            return True
        checked, result = self._has_keys
        if time.monotonic() - checked > 1.0:
            result = await anyio.to_thread.run_sync(self.keys.has_keys)  # a query, maybe over the network
            self._has_keys = (time.monotonic(), result)
        return result

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        needed = scope_for(scope["method"], scope["path"])
        key: ApiKey | None = None
        # Always set, to None too: routes read it (request_key), and nothing else may put it there.
        scope.setdefault("state", {})["api_key"] = None
        always = key_always_needed(scope["path"])
        if needed is not None and (always or await self.auth_on()):
            required = needed != "read" or self.policy.auth_reads
            credentials = _credentials(scope)
            if len(credentials) > 1:
                names = ", ".join(name for name, _ in credentials)
                return await send_error(send, 400, "bad_request",
                                        f"send one credential: this request carries {len(credentials)} ({names}); "
                                        f"{_HOW_TO_SEND_A_KEY}")
            presented = _key_of(credentials[0]) if credentials else None
            if presented is not None:
                key = await anyio.to_thread.run_sync(self.keys.verify, presented)
                if key is None:
                    return await send_error(send, 401, "unauthorized", "the API key is unknown or revoked",
                                            [_CHALLENGE])
                if needed not in key.scopes:
                    return await send_error(send, 403, "forbidden",
                                            f"this key (id {key.key_id}) lacks the {needed!r} scope")
                scope["state"]["api_key"] = key
            elif required:
                return await send_error(
                    send, 401, "unauthorized",
                    f"this request needs an API key with the {needed!r} scope: {_HOW_TO_SEND_A_KEY}", [_CHALLENGE])
        wait = await self._rate_limit(scope, key)
        if wait > 0:
            return await send_error(send, 429, "rate_limited", f"too many requests; retry in {math.ceil(wait)} s",
                                    [(b"retry-after", str(math.ceil(wait)).encode())])
        await self._with_time_limit(scope, receive, send)

    async def _rate_limit(self, scope: Scope, key: ApiKey | None) -> float:
        p = self.policy
        if key is not None:
            rate = key.rate_per_s if key.rate_per_s is not None else p.key_rate_per_s
            burst = key.burst if key.burst is not None else p.key_burst
            if rate <= 0:
                return 0.0
            # A database round trip with CITEQA_STORE=postgresql://: off the event loop.
            return await anyio.to_thread.run_sync(self.keys.take, key.key_id, rate, burst)
        if p.anonymous_rate_per_s <= 0:
            return 0.0
        return self.buckets.take(f"ip:{(scope.get('client') or ('?',))[0]}", p.anonymous_rate_per_s,
                                 p.anonymous_burst)

    async def _with_time_limit(self, scope: Scope, receive: Receive, send: Send) -> None:
        """504 when no response has started in time (a stream, once started, runs on).

        The 504 is sent by the watchdog itself: work in a worker thread cannot be
        cancelled, so the client is answered at once and whatever the route sends when it
        finally returns is dropped."""
        started = timed_out = False

        async def send_unless_late(message: Message) -> None:
            nonlocal started
            if timed_out:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        async with anyio.create_task_group() as tg:
            async def watchdog() -> None:
                nonlocal timed_out
                await anyio.sleep(self.policy.request_timeout_s)
                if not started:
                    timed_out = True
                    await send_error(send, 504, "timeout",
                                     f"the request took longer than {self.policy.request_timeout_s:g} s")
                    tg.cancel_scope.cancel()

            tg.start_soon(watchdog)
            await self.app(scope, receive, send_unless_late)
            tg.cancel_scope.cancel()


_CREDENTIAL_HEADERS = {b"authorization": "Authorization", b"x-api-key": "X-API-Key"}


def _credentials(scope: Scope) -> list[tuple[str, str]]:
    """Every non-empty credential header, as (header name, value): a key may be sent once."""
    found = [(_CREDENTIAL_HEADERS[name], value.decode("latin-1").strip())
             for name, value in scope["headers"] if name in _CREDENTIAL_HEADERS]
    return [(name, value) for name, value in found if value]


def _key_of(credential: tuple[str, str]) -> str | None:
    """The key in a credential header; None for an Authorization of another scheme (Basic...)."""
    name, value = credential
    if name == "X-API-Key":
        return value
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None

