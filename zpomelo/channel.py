"""Channels: named groups of users to push to, local to one server or cluster-wide (global).

A push is grouped by frontend: one bus message per frontend that holds members, which encodes the
push once and writes the same bytes to every member's connection.

Delivery: pushes from one server to one frontend arrive in the order they were sent. A member
added (the add call returned) before a push is sent receives it: until a frontend's bus
subscription is confirmed, pushes to it go over its RPC socket instead (see zpomelo.bus). A
frontend that is down or too slow to keep up loses pushes (bounded queues); pushes are not
stored for later.
"""
import logging

from zpomelo.errors import PlayerOffline

logger = logging.getLogger(__name__)


class Members(list):
    """``members()`` of a global channel: the uids found, and ``unreachable``, the frontends
    that did not answer (their members are not in the list; the rest still is)."""

    def __init__(self, uids=(), unreachable=()):
        super().__init__(uids)
        self.unreachable = list(unreachable)


def _frontend_of(app, uid):
    """The frontend holding uid, from the cluster's uid directory; PlayerOffline when none."""
    frontends = app.players.frontends_of(uid)
    if not frontends:
        raise PlayerOffline([uid])
    return frontends[0]


class Channel:
    """A channel living on one server (usually the backend that owns the room)."""

    def __init__(self, service, name):
        self._service = service
        self.name = name
        self._members = {}   # uid -> frontend id
        self._groups = {}    # frontend id -> {uid: None} (ordered set)

    def add(self, uid, frontend_id=None):
        """Add uid on its frontend; without ``frontend_id`` the uid directory says where it is
        (PlayerOffline when nowhere). False when it already was a member there."""
        if frontend_id is None:
            frontend_id = _frontend_of(self._service.app, uid)
        old = self._members.get(uid)
        if old == frontend_id:
            return False
        if old is not None:
            self._groups[old].pop(uid, None)
        self._members[uid] = frontend_id
        self._groups.setdefault(frontend_id, {})[uid] = None
        return True

    def leave(self, uid, frontend_id=None):
        fid = self._members.get(uid)
        if fid is None or (frontend_id is not None and fid != frontend_id):
            return False
        del self._members[uid]
        group = self._groups.get(fid)
        if group is not None:
            group.pop(uid, None)
            if not group:
                del self._groups[fid]
        return True

    def members(self):
        return list(self._members)

    def member(self, uid):
        return self._members.get(uid)

    @property
    def member_count(self):
        return len(self._members)

    def push(self, route, msg, exclude=()):
        """Push ``msg`` on ``route`` to every member (but ``exclude``d uids); returns members sent to."""
        sent = 0
        for frontend_id, group in list(self._groups.items()):
            uids = [u for u in group if u not in exclude] if exclude else list(group)
            if uids:
                self._service.push_to_frontend(frontend_id, route, msg, uids)
                sent += len(uids)
        return sent

    def destroy(self):
        self._service.destroy_channel(self.name)


class ChannelService:
    def __init__(self, app):
        self._app = app
        self.channels = {}

    @property
    def app(self):
        return self._app

    def create_channel(self, name):
        channel = self.channels.get(name)
        if channel is None:
            channel = self.channels[name] = Channel(self, name)
        return channel

    def get_channel(self, name, create=False):
        channel = self.channels.get(name)
        if channel is None and create:
            channel = self.channels[name] = Channel(self, name)
        return channel

    def destroy_channel(self, name):
        self.channels.pop(name, None)

    def push_to_frontend(self, frontend_id, route, msg, uids):
        self._app.pushes.to_uids(frontend_id, route, msg, uids)

    def push_by_uids(self, route, msg, uids_and_frontends):
        groups = {}
        for uid, frontend_id in uids_and_frontends:
            groups.setdefault(frontend_id, []).append(uid)
        for frontend_id, uids in groups.items():
            self.push_to_frontend(frontend_id, route, msg, uids)
        return sum(len(u) for u in groups.values())

    def broadcast(self, frontend_type, route, msg, bound_only=False):
        frontends = self._app.get_servers_by_type(frontend_type)
        self._app.pushes.broadcast([record.id for record in frontends], route, msg, bound_only)
        return len(frontends)


class GlobalChannel:
    """A cluster-wide channel: members are kept by the frontends they are connected to."""

    def __init__(self, service, name):
        self._service = service
        self.name = name

    def add(self, uid, frontend_id=None):
        """Add uid on the frontend it is connected to (found in the uid directory when
        ``frontend_id`` is None: PlayerOffline when nowhere). False when uid is not connected to
        that frontend: only connected uids are members, and they leave when they disconnect."""
        if frontend_id is None:
            return any([self._service.sys_calls.gchan_add(fid, self.name, uid)
                        for fid in self._frontends_of(uid)])
        return self._service.sys_calls.gchan_add(frontend_id, self.name, uid)

    def leave(self, uid, frontend_id=None):
        if frontend_id is None:
            return any([self._service.sys_calls.gchan_leave(fid, self.name, uid)
                        for fid in self._frontends_of(uid)])
        return self._service.sys_calls.gchan_leave(frontend_id, self.name, uid)

    def _frontends_of(self, uid):
        frontends = self._service.app.players.frontends_of(uid)
        if not frontends:
            raise PlayerOffline([uid])
        return frontends

    def members(self):
        """Every member's uid, asked of every frontend at once; a frontend that does not
        answer is named in the result's ``unreachable`` (see Members) instead of failing all."""
        answers, errors = self._service.sys_calls.gchan_members(self._service.frontend_ids(), self.name)
        found = []
        for fid in sorted(answers):
            found.extend(answers[fid])
        if errors:
            logger.warning("global channel %s: members of %s unknown: %s", self.name,
                           ", ".join(sorted(errors)), "; ".join(str(e) for e in errors.values()))
        return Members(found, sorted(errors))

    @property
    def member_count(self):
        return len(self.members())

    def push(self, route, msg, exclude=()):
        self._service.push(self.name, route, msg, list(exclude))

    def destroy(self):
        self._service.destroy_channel(self.name)


class GlobalChannelService:
    def __init__(self, app, frontend_type=None):
        self._app = app
        self.frontend_type = frontend_type

    def get_channel(self, name, create=True):
        return GlobalChannel(self, name)

    @property
    def app(self):
        return self._app

    @property
    def sys_calls(self):
        return self._app.sys_calls

    def frontend_ids(self):
        return [r.id for r in self._app.membership.frontends(self.frontend_type)]

    def push(self, name, route, msg, exclude=()):
        self._app.pushes.global_push(self.frontend_ids(), name, route, msg, exclude)

    def destroy_channel(self, name):
        self.sys_calls.gchan_destroy(self.frontend_ids(), name)


class GlobalMembers:
    """A frontend's share of global channel membership: channel name -> its uids here."""

    def __init__(self):
        self.channels = {}

    def add(self, name, uid):
        self.channels.setdefault(name, {})[uid] = None
        return True

    def leave(self, name, uid):
        members = self.channels.get(name)
        if not members or uid not in members:
            return False
        del members[uid]
        if not members:
            del self.channels[name]
        return True

    def leave_all(self, uid):
        for name in [n for n, m in self.channels.items() if uid in m]:
            self.leave(name, uid)

    def members(self, name):
        return list(self.channels.get(name, ()))

    def destroy(self, name):
        return self.channels.pop(name, None) is not None
