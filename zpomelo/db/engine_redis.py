"""The Redis engine: documents in a Redis server, each commit one atomic Lua script.

A document is a hash ``{v: version, d: msgpack bytes}`` (``d`` absent once deleted; ``v`` is
kept). The commit script compares the version of every document the transaction read with the
version now stored and, only if all match, writes every change with a new version (drawn at
random, never the old one plus one: see ``new_version``), in one step no other client can
interleave with. Nothing in Redis is a lock: a server that dies holds nothing others wait for,
and its unfinished transactions simply never commit.

Commits waiting at the same moment go out together, one pipeline on one connection: one round
trip, and Redis applies the scripts in order (each still checks its own versions).

Durability is Redis's: with ``appendonly yes`` and ``appendfsync always`` a commit is answered
after it is fsynced to the AOF, so a kill -9 (or power loss) of redis-server loses nothing
acknowledged; ``everysec`` may lose the last second. Replication is asynchronous: see README.
With ``wait_replicas`` > 0 each commit is followed by ``WAIT n timeout``; a commit that fewer
replicas confirmed in time is reported as ``StoreUnavailable`` (it is applied on the primary but
might be lost by a failover), never as success. With ``sentinels`` the primary is the one Redis
Sentinel names, asked again whenever a connection is made, so after a failover the next batch
goes to the promoted primary without a restart.

Needs the ``redis`` package (``pip install zpomelo[redis]``); imported only when used.
"""
import hashlib
import logging
import random
import re
import time

from zpomelo.db.errors import Conflict, StoreUnavailable
from zpomelo.db.group_commit import GroupCommitter
from zpomelo.db.locks import printable
from zpomelo.db.offload import Offloader

logger = logging.getLogger(__name__)

# KEYS: every document read. ARGV: n, then n versions read, then n ops ("" check only,
# "w" write, "d" delete), then n payloads ("" unless written), then n expiries in ms ("" none),
# then n new versions ("" unless written). Versions are compared as the strings Redis holds.
COMMIT_SCRIPT = """
local n = tonumber(ARGV[1])
local stale = {}
for i = 1, n do
  if (redis.call('HGET', KEYS[i], 'v') or '0') ~= ARGV[1 + i] then stale[#stale + 1] = KEYS[i] end
end
if #stale > 0 then return {0, stale} end
for i = 1, n do
  local op = ARGV[1 + n + i]
  if op == 'w' then
    redis.call('HSET', KEYS[i], 'v', ARGV[1 + 4 * n + i], 'd', ARGV[1 + 2 * n + i])
    if ARGV[1 + 3 * n + i] ~= '' then redis.call('PEXPIRE', KEYS[i], ARGV[1 + 3 * n + i]) end
  elseif op == 'd' then
    redis.call('HSET', KEYS[i], 'v', ARGV[1 + 4 * n + i])
    redis.call('HDEL', KEYS[i], 'd')
  end
end
return {1}
"""
# A written document's new version is drawn at random, not the old one plus one: Redis may lose
# acknowledged writes (the last second with appendfsync everysec; what a promoted replica had not
# received), and a counter would then give a lost write's version again to a different document
# body, which a server that cached the lost write would take for its own. Below 10**14 a version
# survives a Lua number (a double, printed with 14 digits) exactly.
VERSION_SPACE = 10 ** 14
# With Sentinels: seconds between two questions "which server is the primary?" before a batch.
# A primary that stays up through a planned failover (SENTINEL FAILOVER) keeps taking writes on
# connections left open to it until Sentinel turns it into a replica, about 10 s later, and what
# it took meanwhile is lost then; asking bounds that to about this long.
PRIMARY_CHECK_SECONDS = 1.0
# Seconds a Sentinel may take to answer (they answer in microseconds): the writer asks them
# before a batch, and one whose host is down must not hold the commits for a socket timeout.
SENTINEL_TIMEOUT = 1.0


def new_version(old):
    """A version for a document written over version ``old`` (never ``old`` itself)."""
    version = random.randrange(1, VERSION_SPACE)
    while version == old:
        version = random.randrange(1, VERSION_SPACE)
    return version


class RedisEngine:
    name = "redis"

    def __init__(self, url="redis://127.0.0.1:6379/0", prefix="zp:", wait_replicas=0,
                 wait_timeout=1.0, socket_timeout=10.0, client=None, max_batch=256,
                 sentinels=None, sentinel_master="zpomelo", sentinel_password=None):
        """sentinels: [(host, port), ...] of Redis Sentinels; the primary is then the one they
        name ``sentinel_master`` (``url`` gives only the database number and the password), and
        every connection made after a failover goes to the promoted primary.
        sentinel_password: the Sentinels' own password, if they have one."""
        try:
            import redis
        except ImportError:
            raise ImportError("the Redis store needs the redis package: pip install 'zpomelo[redis]'") from None
        self._redis_errors = (redis.RedisError, OSError)
        self._no_script = redis.exceptions.NoScriptError
        from redis.sentinel import MasterNotFoundError
        self._no_primary = MasterNotFoundError
        self._response_error = redis.exceptions.ResponseError
        self.url = url
        self.prefix = prefix
        self.wait_replicas = int(wait_replicas)
        self.wait_timeout = wait_timeout
        self._sentinel = None
        self._next_primary_check = 0.0
        if client is None and sentinels:
            client = self._client_through_sentinels(url, sentinels, sentinel_master, sentinel_password,
                                                    socket_timeout)
        elif client is None:
            client = redis.Redis.from_url(url, socket_timeout=socket_timeout,
                                          socket_connect_timeout=socket_timeout)
        self.client = client
        # Commits go out on the writer's own connection, outside the pool, and are never sent
        # twice: a batch that failed after it was written may have been applied, and commits
        # sent again would meet their own new versions, come back as conflicts and rerun their
        # handlers (applied twice; redis-py's pipelines retry, 10 times for a redis.Redis()).
        # It also skips what a pipeline did per batch: a pool checkout that polls the socket
        # for unread data, the retry wrapper, the pipeline object (about 15 us of CPU a batch).
        self._writer_conn = client.connection_pool.make_connection()
        # EVALSHA by hand: redis-py's registered scripts ask SCRIPT EXISTS before every pipeline,
        # a second round trip per batch; a missing script is loaded when Redis says NOSCRIPT
        self._script_sha = hashlib.sha1(COMMIT_SCRIPT.encode()).hexdigest()
        self._offload = Offloader(8)
        self._expiring = []         # (key prefix, ms): written documents there expire
        self.stats = {"commits": 0, "conflicts": 0}
        self._commits = GroupCommitter(self._apply, max_batch, lambda: StoreUnavailable(
            "the Redis store %s is closed" % self.url))

    def _client_through_sentinels(self, url, sentinels, master, password, socket_timeout):
        """A client of the primary the Sentinels name. Its connections ask them where the
        primary is each time they connect, so after a failover (the old primary's connection
        broke, or it answered READONLY as a demoted replica: redis-py drops that connection)
        the next batch goes to the promoted one; ``_follow_primary`` covers an old primary that
        stays up and keeps the writer's connection open."""
        from redis.backoff import NoBackoff
        from redis.connection import parse_url
        from redis.retry import Retry
        from redis.sentinel import Sentinel
        if url.startswith("rediss:"):
            raise ValueError("TLS (rediss://) is not supported with sentinels yet")
        parts = parse_url(url)
        auth = {k: parts[k] for k in ("db", "username", "password") if parts.get(k) is not None}
        timeouts = {"socket_timeout": socket_timeout, "socket_connect_timeout": socket_timeout}
        # no retries: redis.Redis() retries 10 times with a backoff growing to 10 s, which held
        # a commit 15 s behind one frozen Sentinel (the test); the next Sentinel is the retry
        wait = min(socket_timeout, SENTINEL_TIMEOUT)
        asking = {"socket_timeout": wait, "socket_connect_timeout": wait, "retry": Retry(NoBackoff(), 0)}
        if password:
            asking["password"] = password
        self._sentinel = Sentinel([tuple(s) for s in sentinels], sentinel_kwargs=asking)
        self.url = "redis-sentinel://%s/%s (db %s)" % (
            ",".join("%s:%s" % tuple(s) for s in sentinels), master, auth.get("db", 0))
        return self._sentinel.master_for(master, **timeouts, **auth)

    def _guarded(self, fn, *args):
        try:
            return fn(*args)
        except self._redis_errors as exc:
            if isinstance(exc, self._no_primary):   # its own text lists every client it asked
                errors = sorted(set(re.findall(r"(\w+Error)\b", str(exc))) - {"MasterNotFoundError"})
                raise StoreUnavailable(
                    "no Sentinel of %s named a primary%s: check sentinels, sentinelMaster and "
                    "sentinelPassword in db.json, and that the Sentinels reach the primary "
                    "(nothing was sent to Redis)" % (
                        self.url, " (they answered %s)" % ", ".join(errors) if errors else "")) from None
            raise StoreUnavailable("Redis %s failed: %s: %s (the outcome of a commit is unknown)" % (
                self.url, type(exc).__name__, exc)) from None

    def load_async(self, key):
        return self._offload.call(self._guarded, self._load, key)

    def _load(self, key):
        version, data = self.client.hmget(self.prefix + key, "v", "d")
        return (int(version) if version is not None else 0), data

    def expire_prefix(self, prefix, seconds):
        """Documents written under ``prefix`` expire ``seconds`` after their last write (set in
        the commit script, so a write and its expiry are one step)."""
        self._expiring.append((prefix, int(seconds * 1000)))

    def _expiry(self, key, op):
        if op == "w":
            for prefix, ms in self._expiring:
                if key.startswith(prefix):
                    return ms
        return ""

    def commit_async(self, checks, writes):
        return self._commits.submit(checks, writes)

    def _apply(self, batch):
        """Every commit waiting goes out in one pipeline (one round trip; Redis runs the scripts
        one after the other and, with appendfsync always, fsyncs them once)."""
        return self._offload.call(self._guarded, self._commit_batch, batch).get()

    def _follow_primary(self):
        """(Sentinels only.) At most every PRIMARY_CHECK_SECONDS: ask where the primary is, and
        close the writer's connection if it is open to another server, so this batch goes to
        the primary. Sentinels that do not answer leave the connection as it is."""
        now = time.monotonic()
        if now < self._next_primary_check:
            return
        self._next_primary_check = now + PRIMARY_CHECK_SECONDS
        try:
            primary = tuple(self.client.connection_pool.get_master_address())  # idle pool ones too
        except self._redis_errors as exc:
            logger.warning("Redis Sentinels %s: where is the primary? %s", self.url, exc)
            return
        conn = self._writer_conn
        if (conn.host, conn.port) != primary:
            conn.disconnect()

    def _commit_batch(self, batch):
        if self._sentinel is not None:
            self._follow_primary()
        versions = [{key: new_version(checks[key]) for key in writes} for checks, writes in batch]
        replies = self._run_scripts(batch, versions)
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, self._no_script)]
        if missing:
            # Redis restarted or its scripts were flushed; NOSCRIPT means that commit did not
            # run, so it runs now (after the others of its batch: no two commits of one batch
            # touch one document, this server's locks see to that)
            loaded, = self._on_writer([("SCRIPT", "LOAD", COMMIT_SCRIPT)])
            if isinstance(loaded, Exception):
                raise loaded
            rerun = self._run_scripts([batch[i] for i in missing], [versions[i] for i in missing])
            for i, reply in zip(missing, rerun):
                replies[i] = reply
        outcomes = list(map(self._outcome, replies, versions))
        if self.wait_replicas > 0 and any(not isinstance(o, BaseException) for o in outcomes):
            acked, = self._on_writer([("WAIT", self.wait_replicas, int(self.wait_timeout * 1000))])
            if isinstance(acked, Exception):
                raise acked
            if acked < self.wait_replicas:
                error = StoreUnavailable(
                    "the commit reached the Redis primary but only %d of %d replicas confirmed it "
                    "within %.3gs: it may be lost if the primary fails now" % (
                        acked, self.wait_replicas, self.wait_timeout))
                outcomes = [o if isinstance(o, BaseException) else error for o in outcomes]
        return outcomes

    def _run_scripts(self, batch, versions):
        """The commit script for each commit (``versions``: the new version of each document it
        writes), in one round trip; their replies."""
        commands = []
        for (checks, writes), new in zip(batch, versions):
            keys = list(checks)
            ops = [("" if k not in writes else ("d" if writes[k] is None else "w")) for k in keys]
            commands.append(("EVALSHA", self._script_sha, len(keys), *[self.prefix + k for k in keys],
                             len(keys), *[checks[k] for k in keys], *ops,
                             *[(writes.get(k) or b"") for k in keys],
                             *[self._expiry(k, op) for k, op in zip(keys, ops)],
                             *[new.get(k, "") for k in keys]))
        return self._on_writer(commands)

    def _on_writer(self, commands):
        """Write ``commands`` at once on the writer's connection and read their replies (an
        error reply as a ResponseError value). Everything the writer sends goes here, WAIT
        included: it counts the replicas that have this connection's writes."""
        conn = self._writer_conn
        try:
            # connect() first: a Sentinel's connection asks there where the primary is only in
            # connect(), which send_packed_command's own connecting skips
            conn.connect()
            conn.send_packed_command(conn.pack_commands(commands))
            replies = []
            for _ in commands:
                try:
                    replies.append(conn.read_response())
                except self._response_error as exc:     # Redis answered with an error
                    replies.append(exc)
            return replies
        except BaseException:
            conn.disconnect()   # half an answer must not be read as the next batch's
            raise

    def _outcome(self, reply, versions):
        if isinstance(reply, Exception):
            if "maxmemory" in str(reply):   # refused at the script's first write: nothing written
                return StoreUnavailable(
                    "Redis %s is over its maxmemory; nothing of this commit was written: raise "
                    "maxmemory or free memory in Redis, then retry (%s)" % (self.url, reply))
            return StoreUnavailable("Redis %s refused a commit: %s" % (self.url, reply))
        if reply[0] != 1:
            plen = len(self.prefix)
            stale = [(k.decode() if isinstance(k, bytes) else k)[plen:] for k in reply[1]]
            self.stats["conflicts"] += 1
            return Conflict("another server changed %s since this transaction read it" % (
                ", ".join(printable(k) for k in stale[:5])), stale)
        self.stats["commits"] += 1
        return versions

    def close(self):
        if not self._commits.close(timeout=5):
            return
        self._offload.close()
        try:
            self._writer_conn.disconnect()
            self.client.close()
            if self._sentinel is not None:
                self._sentinel.close()
        except Exception:
            pass
