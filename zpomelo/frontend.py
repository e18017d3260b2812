"""A frontend's application side: handshakes, sessions, local handlers, forwarding (pushes: pushes.py).

The connector calls in here (see INTERNALS.md "connector/"). The hot path for a forwarded
request runs without a greenlet: decode (connector) -> route -> RPC call_async -> callback ->
encode -> the connection's writer.
"""
import logging
import time

from gevent.event import Event

from zpomelo import loader
from zpomelo.channel import GlobalMembers
from zpomelo import settings
from zpomelo.config import load_json_config
from zpomelo.connector import badinput
from zpomelo.connector.config import ConnectorConfig
from zpomelo.errors import (CODE_FAIL, CODE_OK, CODE_OLD_CLIENT, BodyError, ProtocolError, RouteError,
                            ZpomeloError)
from zpomelo.greenpool import GreenPool
from zpomelo.metrics.stats import ReasonCounter
from zpomelo.protocol import rsa
from zpomelo.resume import SessionResume
from zpomelo.protocol.codec import RawBody
from zpomelo.router import parse_route
from zpomelo.session import SessionService
from zpomelo.sysapi import FORWARD, SYS

logger = logging.getLogger(__name__)

KICKED = "kicked: "     # how the connector's close reason starts for a kick (Connection.kick)



def build_codec(app, config):
    from zpomelo.protocol.codec import ServerCodec
    from zpomelo.protocol.dictionary import RouteDictionary
    from zpomelo.protocol.protobuf import ProtobufPair

    dictionary = protobuf = None
    if config.use_dict:
        extra = load_json_config(app.base_dir, app.env, "dictionary.json", default=[]) or []
        dictionary = RouteDictionary(loader.scan_handler_routes(app.base_dir), extra)
    if config.use_protobuf:
        server = load_json_config(app.base_dir, app.env, "serverProtos.json", default={}) or {}
        client = load_json_config(app.base_dir, app.env, "clientProtos.json", default={}) or {}
        protobuf = ProtobufPair(server, client)
    return ServerCodec(dictionary=dictionary, protobuf=protobuf)


class FrontendService:
    # The connector hands JSON request bodies over undecoded (codec.RawBody): a forwarded
    # request's body goes to the backend as the client's bytes and is decoded there; whatever
    # needs the object here (a local handler, useCrypto, a route function reading it) decodes it.
    lazy_bodies = True

    def __init__(self, app):
        self.app = app
        record = app.current_server
        overrides = {}
        raw = app.get("connectorConfig") or {}
        if record.max_connections and "maxConnections" not in raw:
            overrides["max_connections"] = record.max_connections
        config = ConnectorConfig.from_pomelo(raw, **overrides)
        config.codec = self.codec = build_codec(app, config)
        self.connector_config = config
        self.sessions = SessionService(app.server_id, single_session=config.single_session,
                                       directory=self)
        self.sessions.end = self.close_session
        keys = getattr(app, "keys", None)
        self.resume = SessionResume(self, raw, keys.secret if keys is not None else None,
                                    app.server_id)
        self.stopping = False   # set when the server stops: closing connections get no window
        self.global_members = GlobalMembers()
        self.handshake_hook = config.handshake_hook      # fn(app, session, sys, user) -> reply user
        self.check_client = config.check_client          # fn(client_type, version) -> bool
        self.pool = GreenPool(config.handler_pool_size)
        self.forward_timeout = (config.forward_timeout if config.forward_timeout is not None
                                else settings.value(app.settings, "rpcTimeout"))
        self.max_in_flight = config.max_in_flight
        self.use_crypto = config.use_crypto
        self.global_filters = app.global_filters   # run only when the game registered some
        self.forwarding = 0     # forwarded requests waiting for their backend's answer
        self.handshakes = {}    # result code -> count (metrics, the console)
        self.kicks = ReasonCounter()
        self._drained = None    # set by the last answer once drain() waits

    def bind_connector(self):
        """The client listener, bound (``.port``) but not accepting until ``start()``."""
        from zpomelo.connector import Connector

        record = self.app.current_server
        # clientHost is only advertised; like Pomelo, clients are accepted on every interface
        # unless the server record's clientBind names one address
        host = record.extra.get("clientBind") or "0.0.0.0"
        connector = Connector(self, host, record.client_port or 0)
        try:
            return connector.bind()
        except OSError as exc:
            raise OSError("cannot listen for clients on %s:%s: %s"
                          % (host, record.client_port or 0, exc)) from exc

    # -- the connector's interface -------------------------------------------------------
    def on_connect(self, conn):
        self.sessions.create(conn)
        return True

    def on_handshake(self, conn, sys, user):
        code, reply_user = self._handshake(conn, sys, user)
        self.handshakes[code] = self.handshakes.get(code, 0) + 1
        return code, reply_user

    def _handshake(self, conn, sys, user):
        if self.check_client is not None:
            try:
                if not self.check_client(sys.get("type"), sys.get("version")):
                    return CODE_OLD_CLIENT, None
            except Exception:
                logger.exception("checkClient hook failed")
                return CODE_OLD_CLIENT, None
        reply_user = None
        session = conn.session
        if self.use_crypto:
            try:
                session.public_key = rsa.parse_public_key(sys.get("rsa") or {})
            except ProtocolError as exc:
                logger.info("handshake from %s refused: %s", conn.address, exc)
                return CODE_FAIL, None
        if self.handshake_hook is not None:
            try:
                reply_user = self.handshake_hook(self.app, session, sys, user)
            except Exception as exc:
                logger.info("handshake hook refused %s: %s", conn.address, exc)
                return CODE_FAIL, None
        resume = sys.get("resume")
        if resume is not None and self.resume.enabled:
            # only a client that asked: a stock Pomelo client's handshake reply is unchanged
            resumed, reply = self.resume.on_handshake(conn, session, resume)
            if resumed is not session and self.use_crypto:
                resumed.public_key = session.public_key
            conn.resumable = True
            conn.handshake_extra = {"resume": reply}
        return CODE_OK, reply_user

    def on_ready(self, conn):
        """The client's handshake ACK: a resuming connection takes its session over here."""
        if conn.resumable:
            self.resume.on_ready(conn)

    def on_close(self, conn, reason):
        if isinstance(reason, str) and reason.startswith(KICKED):
            self.kicks.add(reason[len(KICKED):])
        session = conn.session
        if session is None or session.conn is not conn:
            return      # a resume that never got its ACK, or a connection a resume replaced
        if self.resume.holds(session, conn):
            self.resume.drop(session, reason)
            return
        self.close_session(session, reason)

    def close_session(self, session, reason):
        """End a session for good: close callbacks, uid index, global channels."""
        state = session.resume
        if state is not None and state.timer is not None:
            state.timer.kill(block=False)
            state.timer = None
        self.sessions.close(session.id, reason)   # the directory hook below leaves global channels

    # -- the sessions' directory hooks (SessionService.directory) ------------------------
    def claim(self, session, uid):
        self.app.players.claim(session, uid)

    def release(self, uid, sid):
        """A session let go of uid (unbind, close): the directory forgets it, and global
        channels too once no session of uid is left here."""
        self.app.players.release(uid, sid)
        if not self.sessions.get_by_uid(uid):
            self.global_members.leave_all(uid)

    def on_request(self, conn, msg_id, route, body):
        session = conn.session
        if session is None:
            return
        if msg_id:
            if session.in_flight >= self.max_in_flight:
                # answered at once, ahead of the earlier ones: holding it would let one client
                # pile up unbounded answers behind a slow request
                conn.send(self.codec.encode_response(msg_id, route, {
                    "code": CODE_FAIL, "error": "too many requests in flight (%d)" % self.max_in_flight}))
                return
            session.expect(msg_id)
        try:
            server_type = parse_route(route)[0]
        except RouteError as exc:
            if body.__class__ is RawBody:   # a bad body is answered as such, whatever the route
                try:
                    body.decode()
                except BodyError as body_exc:
                    self._bad_body(session, msg_id, route, body_exc)
                    return
            self._answer(session, msg_id, route, {"code": CODE_FAIL, "error": str(exc)})
            return
        try:
            filters = self.global_filters   # its lists, not its truth: __bool__ is a Python call
            if body.__class__ is RawBody and (filters.before or filters.after or self.use_crypto
                                              or server_type == self.app.server_type):
                body = body.decode()    # global filters, useCrypto and local handlers read it
            if filters.before:
                refusal = filters.run_before(route, body, session)
                if refusal is not None:
                    self._answer(session, msg_id, route, refusal)
                    return
            if self.use_crypto and not self._signature_ok(session, body):
                self._answer(session, msg_id, route, {
                    "code": CODE_FAIL, "error": "the request signature (__crypto__) is missing or wrong"})
            elif server_type == self.app.server_type:
                self._run_local(session, msg_id, route, body)
            else:
                self._forward(session, server_type, msg_id, route, body)
        except BodyError as exc:
            self._bad_body(session, msg_id, route, exc)
        except Exception:   # a bug here must not leave the expected answer owed
            logger.exception("request %s failed before reaching its handler", route)
            self._answer(session, msg_id, route, {"code": CODE_FAIL, "error": "internal server error"})

    def _bad_body(self, session, msg_id, route, exc):
        """A request body that is not a JSON object: counted as the connector counts it and
        answered ``{"code": 500}`` in order (what the connector answers for one it decoded)."""
        session.conn.note_bad_input(badinput.BAD_BODY, exc)
        self._answer(session, msg_id, route, {"code": CODE_FAIL})

    def answer_in_order(self, conn, msg_id, data):
        """An answer the connector made itself (a body it could not decode), kept in order."""
        session = conn.session
        if session is None or session.in_flight >= self.max_in_flight:
            conn.send(data)
            return
        session.expect(msg_id)
        session.respond(msg_id, data)

    @staticmethod
    def _signature_ok(session, body):
        """Pomelo's useCrypto: body.__crypto__ signs JSON.stringify(body without __crypto__)."""
        if not isinstance(body, dict) or session.public_key is None:
            return False
        signature = body.pop("__crypto__", None)
        if not signature:
            return False
        n, e = session.public_key
        text = rsa.signed_text(body)
        return text is not None and rsa.verify_sha256(n, e, text, signature)

    # -- local handlers ------------------------------------------------------------------
    def _run_local(self, session, msg_id, route, body):
        if self.pool.full():
            self._answer(session, msg_id, route, {"code": CODE_FAIL, "error": "server too busy"})
            return
        self.pool.spawn(self._handle_local, session, msg_id, route, body)

    def _handle_local(self, session, msg_id, route, body):
        response = self.app.handler_service.handle(route, body, session)
        if self.global_filters.after and msg_id:
            self.global_filters.run_after(route, body, session, response)
        self._answer(session, msg_id, route, response)

    def _answer(self, session, msg_id, route, response):
        if not msg_id or session.closed:
            return
        codec = self.codec
        try:
            data = codec.encode_response(msg_id, route, response)
        except Exception as exc:
            logger.error("cannot encode the response of %s: %s", route, exc)
            try:
                data = codec.encode_response(msg_id, route, {
                    "code": CODE_FAIL, "error": "the response could not be encoded"})
            except Exception:   # a protobuf route whose message cannot carry that body
                data = codec.encode_response_raw(msg_id, b'{"code":500}')
        session.respond(msg_id, data)

    def _answer_json(self, session, msg_id, route, json_bytes):
        """An answer the backend already encoded as JSON (the forward fast path)."""
        if session.closed:
            return
        try:
            data = self.codec.encode_response_raw(msg_id, json_bytes)
        except ProtocolError as exc:     # over the protocol's size limit
            logger.error("cannot encode the response of %s: %s", route, exc)
            self._answer(session, msg_id, route, {"code": CODE_FAIL, "error": "the response could not be encoded"})
            return
        session.respond(msg_id, data)

    # -- forwarding to a backend ----------------------------------------------------------
    def _forward(self, session, server_type, msg_id, route, body):
        """Send the request to a backend. Whatever fails here (routing, a value the RPC packing
        cannot carry, a dead peer) answers the request: an expected answer is never left owed."""
        app = self.app
        try:
            server_id = app.router.pick(server_type, session, body, route)
        except BodyError:
            raise
        except Exception as exc:
            self._answer(session, msg_id, route, {"code": CODE_FAIL, "error": str(exc)})
            return
        if body.__class__ is RawBody:
            # the backend decodes the body, and encodes the answer as JSON unless it is protobuf
            args = [route, body.data, session.snapshot(), not self.codec.uses_protobuf(route)]
        else:
            args = [route, body, session.snapshot()]
        if not msg_id:
            try:
                app.rpc_client.notify(server_id, SYS, FORWARD, args)
            except ZpomeloError as exc:
                logger.warning("notify %s to %s lost: %s", route, server_id, exc)
            except Exception as exc:    # nothing msgpack can carry; no answer is owed
                session.conn.note_bad_input("unforwardable notify", "%s: %s" % (route, exc))
            return
        settled = []

        def forwarded(error, result):
            if settled:
                return
            settled.append(True)
            self.forwarding -= 1
            if error is not None:
                if getattr(error, "remote_type", None) == "BodyError":
                    self._bad_body(session, msg_id, route, error)
                else:
                    response = {"code": CODE_FAIL, "error": str(error)}
                    if self.global_filters.after:
                        self.global_filters.run_after(route, body, session, response, error)
                    self._answer(session, msg_id, route, response)
            else:
                try:
                    response, mark = result     # _sys.forward: [response, bus mark]
                except (TypeError, ValueError):
                    response, mark = {"code": CODE_FAIL, "error": "malformed answer from %s" % server_id}, None
                if self.global_filters.after:
                    self.global_filters.run_after(route, body, session, response)
                answer = self._answer_json if response.__class__ is bytes else self._answer
                if mark is None or app.bus is None or app.bus.delivered(mark):
                    answer(session, msg_id, route, response)
                else:   # pushes the backend sent before answering are still on the bus
                    app.bus.when_delivered(mark, lambda: answer(session, msg_id, route, response))
            if not self.forwarding and self._drained is not None:
                self._drained.set()

        self.forwarding += 1
        try:
            app.rpc_client.call_async(server_id, SYS, FORWARD, args, self.forward_timeout, forwarded)
        except Exception as exc:
            forwarded("the request cannot be forwarded to a %s server: %s" % (server_type, exc), None)

    def drain(self, timeout):
        """Wait (bounded) until local handlers and forwarded requests in flight are answered."""
        deadline = time.monotonic() + timeout
        self.pool.join(timeout)
        if self.forwarding:
            self._drained = Event()
            self._drained.wait(max(0.0, deadline - time.monotonic()))
        if self.forwarding or len(self.pool):
            logger.warning("%s: stopping with %d forwarded and %d local requests unanswered",
                           self.app.server_id, self.forwarding, len(self.pool))
