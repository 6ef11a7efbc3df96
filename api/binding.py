"""The sockets ``citeqa serve`` listens on, bound before the app is built, so that whether the
server is exposed (and so whether keys are required) is decided from the addresses actually
bound, not from how the host was spelled: "" binds every interface, and a name binds what
it resolves to.

Binding follows asyncio's ``create_server`` (what uvicorn does with a host and a port): one
socket per address of the host, IPv6 sockets IPv6-only, families this machine lacks skipped.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

from citeqa.api.security import is_loopback


@dataclass(frozen=True)
class Bound:
    sockets: list[socket.socket]

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [(str(s.getsockname()[0]), int(s.getsockname()[1])) for s in self.sockets]

    @property
    def exposed_at(self) -> tuple[str, int]:
        """The address that decides exposure: the first non-loopback one, else the first."""
        public = [a for a in self.addresses if not is_loopback(a[0])]
        return (public or self.addresses)[0]

    def close(self) -> None:
        for s in self.sockets:
            s.close()


def bind(host: str, port: int) -> Bound:
    """Bind every address ``host`` stands for ("" for all interfaces) on ``port`` (0: a free
    port, the same one for every address). Raises OSError when none can be bound."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)  # leave IPv4 to its own socket
            if port == 0 and len(sockets) > 1:
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            try:
                sock.bind(address)
            except OSError as exc:
                if exc.errno != errno.EADDRNOTAVAIL:  # a family this machine has no address of: skip it
                    raise
                sockets.pop().close()
        if not sockets:
            raise OSError(errno.EADDRNOTAVAIL, f"cannot bind {host!r}: no address of it is available here")
    except BaseException:
        Bound(sockets).close()
        raise
    return Bound(sockets)
