"""player.playerHandler.*: each call is one transaction (commit before the answer)."""
from zpomelo import HandlerError


def give(app, msg, session):
    """{to, item}: move one of my items to another player, atomically; both are told on commit."""
    Player = app.db.models.Player
    me, other = Player.get(session.uid), Player.get(msg.get("to", ""))
    if other is None:
        raise HandlerError({"code": 404, "error": "no player %r" % msg.get("to")})
    if msg.get("item") not in me.items:
        raise HandlerError({"code": 409, "error": "you have no %r" % msg.get("item")})
    me.items.remove(msg["item"])
    other.items.append(msg["item"])
    _push_to(app, [me, other], "onGive", {"from": me.id, "to": other.id, "item": msg["item"]})
    return {"code": 200, "items": me.items}


def pay(app, msg, session):
    """{to, gold}: move gold; refused (and nothing changes) when there is not enough."""
    Player = app.db.models.Player
    me, other = Player.get(session.uid), Player.get(msg.get("to", ""))
    amount = msg.get("gold")
    if other is None or not isinstance(amount, int) or amount <= 0:
        raise HandlerError({"code": 400, "error": "pay needs an existing player and gold > 0"})
    if me.gold < amount:
        raise HandlerError({"code": 409, "error": "not enough gold"})
    me.gold -= amount
    other.gold += amount
    _push_to(app, [me, other], "onPay", {"from": me.id, "to": other.id, "gold": amount})
    return {"code": 200, "gold": me.gold}


def pick(app, msg, session):
    """{item}: add an item to my inventory."""
    me = app.db.models.Player.get(session.uid)
    me.items.append(str(msg.get("item")))
    return {"code": 200, "items": me.items}


def me(app, msg, session):
    return {"code": 200, "player": app.db.models.Player.get(session.uid).to_dict()}


def _push_to(app, players, route, msg, exclude=()):
    """Push to players by document (each keeps its connector's id); inside the transaction, so
    the push leaves only when it commits."""
    targets = [(p.id, p.frontend) for p in players if p.frontend and p.id not in exclude]
    if targets:
        app.channel_service.push_by_uids(route, msg, targets)
