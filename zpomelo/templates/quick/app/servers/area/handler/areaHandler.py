"""area.areaHandler.*: runs on the area's server (app/routes/area.py); each call one transaction."""
from zpomelo import HandlerError


def join(app, msg, session):
    """{areaId}: enter an area (leaving the last one); everyone there is told on commit."""
    Player, Area = app.db.models.Player, app.db.models.Area
    area_id = msg.get("areaId")
    if not area_id or not isinstance(area_id, str):
        raise HandlerError({"code": 400, "error": "areaId must be a non-empty string"})
    me = Player.get(session.uid)
    if me is None:
        raise HandlerError({"code": 404, "error": "log in first (connector.entryHandler.login)"})
    area = Area.get_or_create(area_id, name=area_id)
    area.visits += 1
    left = me.area_id
    me.area_id, me.x, me.y = area_id, 0, 0
    if left and left != area_id:
        _push_to(app, Player.find_by("area_id", left), "onLeave", {"uid": me.id})
    _push_to(app, Player.find_by("area_id", area_id), "onJoin", {"uid": me.id, "name": me.name}, exclude=(me.id,))
    session.set("areaId", area_id)
    session.push("areaId")          # sent to the connector after the commit
    return {"code": 200, "players": [p.to_dict() for p in Player.find_by("area_id", area_id)]}


def move(app, msg, session):
    """{areaId, x, y}: move inside my area; the area sees it on commit."""
    me = app.db.models.Player.get(session.uid)
    if me is None or me.area_id != msg.get("areaId"):
        raise HandlerError({"code": 409, "error": "join the area first"})
    x, y = msg.get("x"), msg.get("y")
    if not isinstance(x, int) or not isinstance(y, int):
        raise HandlerError({"code": 400, "error": "x and y must be integers"})
    me.x, me.y = x, y
    _push_to(app, app.db.models.Player.find_by("area_id", me.area_id), "onMove", {"uid": me.id, "x": x, "y": y}, exclude=(me.id,))
    return {"code": 200}


def _push_to(app, players, route, msg, exclude=()):
    """Push to players by document (each keeps its connector's id); inside the transaction, so
    the push leaves only when it commits."""
    targets = [(p.id, p.frontend) for p in players if p.frontend and p.id not in exclude]
    if targets:
        app.channel_service.push_by_uids(route, msg, targets)
