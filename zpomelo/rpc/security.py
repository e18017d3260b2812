"""Cluster security: the cluster secret and CURVE keys, and the socket setup that uses them.

Everything lives under <project>/config/keys/ (written by `zpomelo keys` or `zpomelo init`):

    cluster.secret       random hex; every message on the master port carries an HMAC made with
                         it (master/wire.py Sealer). Required by the master, its servers and the CLI.
    server.key           CURVE public key that every bound cluster socket presents (RPC ROUTER,
                         bus XPUB, master ROUTER); connecting peers need it.
    server.key_secret    its secret key (mode 0600).
    client.key           CURVE public key of cluster members (RPC DEALERs, bus SUBs, the master
                         agent, the CLI); the ZAP handler admits this key and no other.
    client.key_secret    its secret key (mode 0600).

CURVE is on when server.key_secret exists; then every bound socket is a CURVE server and refuses
(in the handshake, before any message) a peer that does not present the cluster's client key.
Production refuses to start with a server or master host that is not loopback unless CURVE is on.

ZAP: libzmq asks the handler bound at inproc://zeromq.zap.01 of the socket's context whether a
CURVE client key may connect. We run one small handler per context, as a greenlet on a
GreenSocket. Each bound socket gets a ZAP domain named after its cluster's server key, so one
process can host sockets of two clusters (tests do) without admitting one's clients to the other.
ZAP_ENFORCE_DOMAIN makes libzmq refuse, instead of admit, when no handler answers.
"""
import errno
import ipaddress
import logging
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import gevent
import zmq
from zmq.auth.certs import load_certificate
from zmq.utils import z85
from zmq.utils.monitor import parse_monitor_message

from zpomelo.errors import ConfigError, ZpomeloError
from zpomelo.rpc.greenzmq import GreenSocket

logger = logging.getLogger(__name__)

KEYS_DIR = Path("config") / "keys"
SECRET_FILE = "cluster.secret"
SERVER_KEY = "server.key"
CLIENT_KEY = "client.key"
SECRET_SUFFIX = "_secret"
MIN_SECRET_CHARS = 32
ZAP_ENDPOINT = "inproc://zeromq.zap.01"


@dataclass(frozen=True)
class ClusterKeys:
    """What a project's config/keys/ holds; every field None when the file is absent."""
    directory: str
    secret: bytes = None
    server_public: bytes = None     # z85 (40 chars), as ZeroMQ's socket options take them
    server_secret: bytes = None
    client_public: bytes = None
    client_secret: bytes = None

    @property
    def curve(self):
        return self.server_secret is not None

    @property
    def zap_domain(self):
        return "zpomelo-" + self.server_public.decode()[:16]


def keys_dir(base_dir):
    return Path(base_dir) / KEYS_DIR


def load_keys(base_dir):
    """The project's keys (ClusterKeys). A half-written set (a secret key without its public
    half, a server key without a client key) is a ConfigError naming the file."""
    directory = keys_dir(base_dir)
    secret = None
    path = directory / SECRET_FILE
    if path.exists():
        _warn_if_readable(path)
        secret = path.read_bytes().strip()
        if len(secret) < MIN_SECRET_CHARS:
            raise ConfigError("%s holds %d characters; a cluster secret needs at least %d "
                              "(regenerate it with `zpomelo keys --force`)"
                              % (path, len(secret), MIN_SECRET_CHARS), path=str(path))
    server = _load_pair(directory, SERVER_KEY)
    client = _load_pair(directory, CLIENT_KEY)
    if (server[1] is None) != (client[1] is None):
        missing = CLIENT_KEY if client[1] is None else SERVER_KEY
        raise ConfigError("%s has only half of the CURVE keys: %s%s is missing; run `zpomelo "
                          "keys --force` to make a new set" % (directory, missing, SECRET_SUFFIX),
                          path=str(directory / (missing + SECRET_SUFFIX)))
    return ClusterKeys(str(directory), secret, server[0], server[1], client[0], client[1])


def _load_pair(directory, name):
    path = directory / (name + SECRET_SUFFIX)
    if not path.exists():
        return None, None
    _warn_if_readable(path)
    try:
        public, secret = load_certificate(str(path))
        z85.decode(public), z85.decode(secret or b"")
    except (OSError, ValueError, TypeError) as e:
        raise ConfigError("cannot read the CURVE key %s: %s; regenerate the keys with "
                          "`zpomelo keys --force`" % (path, e), path=str(path)) from None
    if not secret or len(public) != 40 or len(secret) != 40:
        raise ConfigError("%s is not a CURVE secret key file (public-key and secret-key, 40 "
                          "characters each); regenerate with `zpomelo keys --force`" % path,
                          path=str(path))
    return public, secret


def _warn_if_readable(path):
    mode = path.stat().st_mode & 0o077
    if mode:
        logger.warning("%s can be read by other users (mode %o); run chmod 600 %s",
                       path, path.stat().st_mode & 0o777, path)


def require_secret(keys):
    """The master port needs the cluster secret in every environment."""
    if keys.secret is None:
        raise ZpomeloError(
            "no cluster secret: %s is missing. Every message on the master port is "
            "authenticated with it; create it with `zpomelo keys` in the project directory "
            "(the same config/keys/ on every host), then start again"
            % (Path(keys.directory) / SECRET_FILE))
    return keys.secret


def make_local_secret(base_dir, env, keys, hosts):
    """A project fresh from git has no config/keys/ (it is never committed): in a non-production
    environment whose servers all run on loopback, `zpomelo start` makes the secret itself, so the
    first run works as it is. Returns the keys to use (reloaded when it wrote the secret)."""
    if keys.secret is not None or env == "production":
        return keys
    if not all(is_loopback(h) for h in hosts if h):
        return keys         # across hosts every host needs the same secret: `zpomelo keys`
    path = generate(base_dir, curve=False)[0]
    logger.warning("made a cluster secret for this single-host %s cluster: %s (run `zpomelo keys` "
                   "for CURVE keys before running across hosts)", env, path)
    return load_keys(base_dir)


def check_production(env, keys, hosts):
    """Production across hosts (any host not loopback) refuses to run without CURVE."""
    if env != "production" or keys.curve:
        return
    remote = sorted({h for h in hosts if h and not is_loopback(h)})
    if remote:
        raise ZpomeloError(
            "production refuses to run across hosts without encryption: %s %s not loopback "
            "and %s has no CURVE keys. Run `zpomelo keys` in the project directory, copy "
            "config/keys/ to every host, and start again"
            % (", ".join(remote), "is" if len(remote) == 1 else "are",
               Path(keys.directory)))


def is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False        # a host name: it may resolve anywhere, so it counts as remote


# -------------------------------------------------------------------------- generating keys

def generate(base_dir, curve=True, force=False):
    """Write a new cluster secret (and CURVE key pairs when curve); returns the paths written.

    Refuses to overwrite existing files unless force (running clusters keep the old keys until
    restarted, and other hosts need the new ones copied)."""
    directory = keys_dir(base_dir)
    names = [SECRET_FILE] + ([SERVER_KEY, SERVER_KEY + SECRET_SUFFIX, CLIENT_KEY,
                              CLIENT_KEY + SECRET_SUFFIX] if curve else [])
    existing = [n for n in names if (directory / n).exists()]
    if existing and not force:
        raise ZpomeloError("%s already holds %s; pass --force to replace them (then restart the "
                           "cluster and copy config/keys/ to every host)"
                           % (directory, ", ".join(existing)))
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    written = [_write_private(directory / SECRET_FILE, secrets.token_hex(32) + "\n")]
    if curve:
        for name, label in ((SERVER_KEY, "every bound cluster socket"),
                            (CLIENT_KEY, "cluster members and the CLI")):
            public, secret = zmq.curve_keypair()
            written.append(_write_public(directory / name, label, public))
            written.append(_write_private(directory / (name + SECRET_SUFFIX),
                                          _cert_text(label, public, secret)))
    return written


def _cert_text(label, public, secret=None):
    lines = ["#   zpomelo CURVE %s certificate (%s)" % ("secret" if secret else "public", label),
             "#   generated by `zpomelo keys`; ZeroMQ's ZPL format", "metadata", "curve",
             '    public-key = "%s"' % public.decode()]
    if secret:
        lines.append('    secret-key = "%s"' % secret.decode())
    return "\n".join(lines) + "\n"


def _write_public(path, label, public):
    path.write_text(_cert_text(label, public))
    return path


def _write_private(path, text):
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


# -------------------------------------------------------------------------- sockets

def secure_server(sock, keys):
    """Make a socket that binds a CURVE server admitting only the cluster's client key."""
    if keys is None or not keys.curve:
        return
    handler = zap_handler(sock.context)
    handler.admit(keys.zap_domain, keys.client_public)
    sock.setsockopt(zmq.ZAP_ENFORCE_DOMAIN, 1)
    sock.setsockopt_string(zmq.ZAP_DOMAIN, keys.zap_domain)
    sock.setsockopt(zmq.CURVE_SERVER, 1)
    sock.setsockopt(zmq.CURVE_SECRETKEY, keys.server_secret)
    monitor = GreenSocket(sock.get_monitor_socket(_HANDSHAKE_EVENTS))
    gevent.spawn(_log_failed_handshakes, monitor, handler.refusals)


_HANDSHAKE_EVENTS = (zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
                     | zmq.EVENT_MONITOR_STOPPED)


_PROTOCOL_ERRORS = {getattr(zmq, n): n for n in dir(zmq) if n.startswith("PROTOCOL_ERROR_")}


def _log_failed_handshakes(monitor, refusals):
    """Peers refused before ZAP is asked (no CURVE at all: a mechanism mismatch). libzmq names
    only our own endpoint for these, not the peer's address. Ends when the socket closes."""
    try:
        while True:
            event = parse_monitor_message(monitor.recv_multipart())
            if event["event"] == zmq.EVENT_MONITOR_STOPPED:
                return
            value = event["value"]
            reason = _PROTOCOL_ERRORS.get(value) or errno.errorcode.get(value, "error %s" % value)
            refusals.refused("a peer of " + event["endpoint"].decode("ascii", "replace"),
                             "a connection without the cluster's CURVE key",
                             "ZeroMQ handshake failed (%s)" % reason)
    except zmq.ZMQError:
        return
    finally:
        monitor.close()


def secure_client(sock, keys):
    """Make a connecting socket present the cluster's client key and expect its server key."""
    if keys is None or not keys.curve:
        return
    sock.setsockopt(zmq.CURVE_SERVERKEY, keys.server_public)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, keys.client_public)
    sock.setsockopt(zmq.CURVE_SECRETKEY, keys.client_secret)


class RefusalLog:
    """Logs a refusal once per (peer address, kind) per interval, counting the ones it holds back.

    A flood from one address costs one line a minute; bounded memory (oldest entries go first)."""

    def __init__(self, log, interval=60.0, max_entries=10_000):
        self._log = log
        self.interval = interval
        self._max = max_entries
        self._seen = {}         # (address, kind) -> [last logged (monotonic), held back]
        self.count = 0

    def refused(self, address, kind, reason):
        self.count += 1
        key = (address or "unknown", kind)
        now = time.monotonic()
        entry = self._seen.get(key)
        if entry is not None and now - entry[0] < self.interval:
            entry[1] += 1
            return False
        held = entry[1] if entry else 0
        if len(self._seen) >= self._max:
            for old in list(self._seen)[: self._max // 10]:
                del self._seen[old]
        self._seen[key] = [now, 0]
        self._log.warning("refused %s from %s: %s%s", kind, key[0], reason,
                          " (%d more refused since the last report)" % held if held else "")
        return True


class ZapHandler:
    """The ZAP handler of one context: admits a CURVE client when its key is admitted for the
    socket's ZAP domain; logs each refusal once per peer address."""

    def __init__(self, context):
        sock = context.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        try:
            sock.bind(ZAP_ENDPOINT)
        except zmq.ZMQError as e:
            sock.close()
            raise ZpomeloError("cannot install the ZAP handler on %s: %s (another "
                               "authenticator runs in this ZeroMQ context)" % (ZAP_ENDPOINT, e))
        self._socket = GreenSocket(sock)
        self._domains = {}      # ZAP domain -> set of admitted client public keys (32 bytes)
        self.refusals = RefusalLog(logger)
        self.admitted = 0
        self._greenlet = gevent.spawn(self._loop)

    def admit(self, domain, public_key_z85):
        self._domains.setdefault(domain.encode(), set()).add(z85.decode(public_key_z85))

    def _loop(self):
        recv = self._socket.recv_multipart
        while True:
            try:
                parts = recv()
            except zmq.ZMQError:
                return
            try:
                self._socket.try_send_multipart(self._answer(parts))
            except Exception:       # a malformed request must not stop the handler
                logger.exception("ZAP handler failed on a request")

    def _answer(self, parts):
        # [routing id, b"", version, request id, domain, address, identity, mechanism, creds...]
        routing, _empty, version, request_id, domain, address, _identity, mechanism = parts[:8]
        credentials = parts[8:]
        admitted = self._domains.get(domain, ())
        if version != b"1.0":
            status, text = b"500", b"unsupported ZAP version"
        elif mechanism == b"CURVE" and credentials and credentials[0] in admitted:
            self.admitted += 1
            return [routing, b"", b"1.0", request_id, b"200", b"OK", b"cluster", b""]
        else:
            status, text = b"400", b"not a key of this cluster"
            self.refusals.refused(address.decode("ascii", "replace"),
                                  "a %s connection" % mechanism.decode("ascii", "replace"),
                                  "its key is not the cluster's client key (config/keys/)"
                                  if mechanism == b"CURVE" else "no CURVE key")
        return [routing, b"", b"1.0", request_id, status, text, b"", b""]

    def close(self):
        self._greenlet.kill()
        self._socket.close()


_handlers = {}      # id(context) -> (context, ZapHandler)


def zap_handler(context):
    """The context's ZAP handler, started on first use (it lives as long as the context)."""
    entry = _handlers.get(id(context))
    if entry is None or entry[0] is not context or entry[0].closed:
        entry = (context, ZapHandler(context))
        _handlers[id(context)] = entry
    return entry[1]


def close_zap_handler(context):
    """Stop the handler of a context that is about to be terminated (ctx.term() waits for it)."""
    entry = _handlers.pop(id(context), None)
    if entry is not None:
        entry[1].close()
