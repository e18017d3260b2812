"""Whole-message codecs: message layer + route dictionary + protobuf or JSON bodies.

`ServerCodec` is what a frontend uses on every client message; `ClientCodec` is its mirror image
for `zpomelo.client`. Bodies are compact UTF-8 JSON objects (jsonbody.py) unless the route has
protobuf protos (client protos for client->server messages, server protos for server->client
ones; a response uses the server protos of its request's route, as Pomelo does).
"""
from zpomelo.errors import BodyError, ConfigError, ProtocolError
from zpomelo.protocol import message as _message
from zpomelo.protocol.dictionary import RouteDictionary
from zpomelo.protocol.jsonbody import (  # noqa: F401 - the JSON body codec is public here too
    RawBody, _encode_json, decode_json_body, encode_json, loads)
from zpomelo.protocol.message import NOTIFY, PUSH, REQUEST, RESPONSE
from zpomelo.protocol.package import MAX_BODY_LIMIT, pack_header
from zpomelo.protocol.protobuf import Protobuf, ProtobufPair

_decode_message = _message.decode_parts
_encode_id = _message.encode_id
_request_prefix = _message.request_prefix
_RESPONSE_FLAG = b"\x04"
_DATA = 0x04000000
_PREFIX_CACHE_SIZE = 4096


def _data_package(prefix, body):
    n = len(prefix) + len(body)
    if n > MAX_BODY_LIMIT:
        raise ProtocolError("message of %d bytes exceeds the protocol maximum of %d bytes"
                            % (n, MAX_BODY_LIMIT))
    return pack_header(_DATA | n) + prefix + body


def _route_prefix_cache(make):
    cache = {}

    def prefix(route):
        try:
            return cache[route]
        except KeyError:
            value = make(route)
            if len(cache) >= _PREFIX_CACHE_SIZE:
                cache.clear()
            cache[route] = value
            return value
    return prefix


class ServerCodec:
    """Frontend side: decodes requests/notifies, encodes responses/pushes as whole DATA packages."""

    def __init__(self, dictionary=None, protobuf=None):
        if dictionary is not None and not isinstance(dictionary, RouteDictionary):
            raise TypeError("dictionary must be a RouteDictionary or None")
        if protobuf is not None and not isinstance(protobuf, ProtobufPair):
            raise TypeError("protobuf must be a ProtobufPair or None")
        self.dictionary = dictionary
        self.protobuf = protobuf
        self._code_to_route = dictionary.code_to_route if dictionary is not None else {}
        route_to_code = dictionary.route_to_code if dictionary is not None else {}
        self._client_protos = protobuf.client if protobuf and protobuf.client.routes else None
        self._server_protos = protobuf.server if protobuf and protobuf.server.routes else None
        self._push_prefix = _route_prefix_cache(
            lambda route: _message.push_prefix(route_to_code.get(route, route)))

    def handshake_sys(self, client_sys):
        """The route-dictionary and protobuf fields of the handshake reply's `sys` for a client
        whose handshake `sys` is `client_sys` (tables only where its cached versions differ)."""
        reply = {}
        if self.dictionary is not None:
            reply.update(self.dictionary.handshake_sys(client_sys.get("dictVersion")))
        if self.protobuf is not None:
            reply.update(self.protobuf.handshake_sys(client_sys.get("protoVersion")))
        return reply

    def handshake_sys_key(self, client_sys):
        """A small key such that clients with equal keys get equal ``handshake_sys``: whether
        each cached version (dictVersion, protoVersion) is the current one. The connector
        encodes the common handshake reply once per key."""
        dictionary, protobuf = self.dictionary, self.protobuf
        if dictionary is not None:
            version = client_sys.get("dictVersion")
            dict_current = bool(version) and version == dictionary.version
        else:
            dict_current = None
        if protobuf is not None:
            version = client_sys.get("protoVersion")
            proto_current = bool(version) and version == protobuf.version
        else:
            proto_current = None
        return dict_current, proto_current

    def peek(self, data):
        """(type, id, route) of a client message without decoding its body (what a refusal needs
        to answer it); the route is None for a dictionary code we do not know. ProtocolError
        for a malformed header."""
        mtype, msg_id, route, _ = _decode_message(data)
        if route.__class__ is int:
            route = self._code_to_route.get(route)
        return mtype, msg_id, route

    def decode(self, data):
        """Message bytes -> (type, id, route: str, body: dict).

        Raises ProtocolError for a malformed message (close the connection) and BodyError (a
        ProtocolError with `msg_id` and `route`) for a body that cannot be decoded (answer 500).
        """
        return self._decoded(*self._message(data))

    def _message(self, data):
        """(type, id, route name, body bytes) of a client's message; ProtocolError if malformed."""
        mtype, msg_id, route, body = _decode_message(data)
        if mtype > NOTIFY:
            raise ProtocolError("a client may send only REQUEST or NOTIFY messages, got %s"
                                % _message.type_name(mtype))
        if route.__class__ is int:
            try:
                route = self._code_to_route[route]
            except KeyError:
                raise ProtocolError("route code %d is not in the route dictionary" % route) \
                    from None
        return mtype, msg_id, route, body

    def _decoded(self, mtype, msg_id, route, body):
        protos = self._client_protos
        if protos is not None and route in protos:
            try:
                return mtype, msg_id, route, protos.decode(route, body)
            except ProtocolError as exc:
                raise BodyError(str(exc), msg_id, route) from None
        return mtype, msg_id, route, decode_json_body(body, msg_id, route)

    def decode_lazy(self, data):
        """``decode``, except that a REQUEST's JSON body is returned undecoded, as a `RawBody`.

        Protobuf bodies and notifies are decoded now (a bad notify body is refused here, where
        it can be counted: nobody answers a notify)."""
        mtype, msg_id, route, body = self._message(data)
        protos = self._client_protos
        if mtype != REQUEST or (protos is not None and route in protos):
            return self._decoded(mtype, msg_id, route, body)
        return mtype, msg_id, route, RawBody(body, msg_id, route)

    def encode_body(self, route, obj):
        """A server->client body: protobuf when `route` has server protos, else JSON."""
        protos = self._server_protos
        if protos is not None and route in protos:
            return protos.encode(route, obj)
        return encode_json(obj)

    def uses_protobuf(self, route):
        """True when responses/pushes of `route` are protobuf (so raw JSON must not be used)."""
        protos = self._server_protos
        return protos is not None and route in protos

    def encode_response(self, msg_id, route, obj):
        """A whole DATA package answering request `msg_id` (whose route was `route`)."""
        protos = self._server_protos
        if protos is not None and route in protos:
            body = protos.encode(route, obj)
        else:
            try:
                body = _encode_json(obj).encode("utf-8")
            except (TypeError, ValueError, RecursionError, UnicodeEncodeError):
                body = encode_json(obj, "the response body of %s" % route)
        return _data_package(_RESPONSE_FLAG + _encode_id(msg_id), body)

    def encode_response_raw(self, msg_id, json_bytes):
        """A whole DATA package wrapping an already encoded JSON body (the forward fast path)."""
        return _data_package(_RESPONSE_FLAG + _encode_id(msg_id), json_bytes)

    def encode_push(self, route, obj):
        """A whole DATA package pushing `obj` on `route` (dictionary code when it has one)."""
        return _data_package(self._push_prefix(route), self.encode_body(route, obj))

    def encode_push_raw(self, route, body):
        """A whole DATA push package around a body already made by `encode_body(route, ...)`."""
        return _data_package(self._push_prefix(route), body)


class ClientCodec:
    """Client side: learns the dictionary and protos from the handshake reply, encodes
    requests/notifies as whole DATA packages, decodes responses and pushes."""

    def __init__(self):
        self.route_to_code = {}
        self.code_to_route = {}
        self.dict_version = None
        self.proto_version = None
        self._client_protos = None      # encodes our requests/notifies
        self._server_protos = None      # decodes responses/pushes
        self._protobuf_requests = {}    # id -> route, for requests whose reply is protobuf

    def apply_handshake(self, sys):
        """Take `useDict`/`dict`/`routeToCode`/`codeToRoute`/`dictVersion` and
        `useProto`/`protos` from a handshake reply's sys. Without new tables the ones learnt
        before are kept (the server saw our cached versions)."""
        if not isinstance(sys, dict):
            raise ProtocolError("handshake sys must be an object")
        if sys.get("useDict"):
            table = sys.get("routeToCode", sys.get("dict"))
            if table is not None:
                self._learn_dictionary(table, sys.get("dictVersion"))
        else:
            self.route_to_code, self.code_to_route, self.dict_version = {}, {}, None
        if sys.get("useProto"):
            protos = sys.get("protos")
            if protos is not None:
                self._learn_protos(protos)
        else:
            self._client_protos = self._server_protos = self.proto_version = None

    def _learn_dictionary(self, table, version):
        if not isinstance(table, dict) or not all(
                isinstance(route, str) and code.__class__ is int and 0 <= code <= 0xFFFF
                for route, code in table.items()):
            raise ProtocolError("handshake routeToCode must map routes to codes 0..65535")
        self.route_to_code = dict(table)
        self.code_to_route = {code: route for route, code in table.items()}
        self.dict_version = version if isinstance(version, str) else None

    def _learn_protos(self, protos):
        if not isinstance(protos, dict):
            raise ProtocolError("handshake protos must be an object")
        try:
            client = Protobuf(protos.get("client") or {})
            server = Protobuf(protos.get("server") or {})
        except ConfigError as exc:
            raise ProtocolError("handshake protos cannot be compiled: %s" % exc) from None
        self._client_protos = client if client.routes else None
        self._server_protos = server if server.routes else None
        version = protos.get("version")
        self.proto_version = version if isinstance(version, str) else None

    def cached_versions(self):
        """`dictVersion`/`protoVersion` to put in the next handshake's sys."""
        out = {}
        if self.dict_version:
            out["dictVersion"] = self.dict_version
        if self.proto_version:
            out["protoVersion"] = self.proto_version
        return out

    def _body(self, route, obj):
        protos = self._client_protos
        if protos is not None and route in protos:
            return protos.encode(route, obj)
        return encode_json(obj)

    def encode_request(self, msg_id, route, obj):
        """A whole DATA package: REQUEST `msg_id` on `route`."""
        if self._server_protos is not None and route in self._server_protos:
            self._protobuf_requests[msg_id] = route
        if self._client_protos is None:
            body = encode_json(obj)
        else:
            body = self._body(route, obj)
        prefix = _request_prefix(msg_id, self.route_to_code.get(route, route))
        return _data_package(prefix, body)

    def encode_notify(self, route, obj):
        """A whole DATA package: NOTIFY on `route`."""
        body = self._body(route, obj)
        return _data_package(_message.notify_prefix(self.route_to_code.get(route, route)), body)

    def forget(self, msg_id):
        """Drop what was kept for a request that will not be answered (e.g. timed out)."""
        self._protobuf_requests.pop(msg_id, None)

    def decode(self, data):
        """Message bytes -> (type, id, route, body: dict); `route` is None for a RESPONSE whose
        request route is not tracked (JSON replies need none). Raises ProtocolError, or
        BodyError for an undecodable body."""
        mtype, msg_id, route, body = _decode_message(data)
        if mtype == RESPONSE:
            route = self._protobuf_requests.pop(msg_id, None)
        elif mtype == PUSH:
            if route.__class__ is int:
                try:
                    route = self.code_to_route[route]
                except KeyError:
                    raise ProtocolError("push route code %d is not in the route dictionary"
                                        % route) from None
        else:
            raise ProtocolError("a server may send only RESPONSE or PUSH messages, got %s"
                                % _message.type_name(mtype))
        protos = self._server_protos
        if route is not None and protos is not None and route in protos:
            try:
                return mtype, msg_id, route, protos.decode(route, body)
            except ProtocolError as exc:
                raise BodyError(str(exc), msg_id, route) from None
        return mtype, msg_id, route, decode_json_body(body, msg_id, route)


__all__ = ["ServerCodec", "ClientCodec", "encode_json", "decode_json_body", "REQUEST", "NOTIFY",
           "RESPONSE", "PUSH"]
