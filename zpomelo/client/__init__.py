"""A Pomelo client on gevent, over raw TCP or WebSocket (docs/protocol.md): for tests, bots, the load tool.

    with Client.connect("127.0.0.1", 3010, transport="ws", user={"token": "t"}) as client:
        body = client.request("connector.entryHandler.entry", {"uid": "a"})
        client.notify("chat.chatHandler.send", {"msg": "hi"})
        chat = client.wait_push("onChat", timeout=5)

Modules: `connection` (Client: handshake, requests, pushes, heartbeats), `transport` (socket,
TLS, WebSocket upgrade, framing, the writer), `requests` (pending requests, ids, timeouts),
`pushes` (handlers and the wait_push queue), `cache` (HandshakeCache), `errors`.
"""
from zpomelo.client.cache import HandshakeCache
from zpomelo.client.connection import (CLIENT_TYPE, CLIENT_VERSION, DEFAULT_MAX_QUEUED,
                                       DEFAULT_PUSH_QUEUE, DEFAULT_REQUEST_TIMEOUT, Client)
from zpomelo.client.errors import (ClientError, ClientTimeout, ConnectionClosed, HandshakeError,
                                   RequestTimeout)
from zpomelo.client.requests import MAX_REQUEST_ID

__all__ = ["Client", "HandshakeCache", "ClientError", "ClientTimeout", "ConnectionClosed",
           "HandshakeError", "RequestTimeout", "CLIENT_TYPE", "CLIENT_VERSION", "MAX_REQUEST_ID",
           "DEFAULT_REQUEST_TIMEOUT", "DEFAULT_PUSH_QUEUE", "DEFAULT_MAX_QUEUED"]
