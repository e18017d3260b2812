"""Every request here runs in a transaction (the project configures a store)."""
import builtins

import gevent

from zpomelo import HandlerError
from zpomelo.db import current


def _push_to(app, account_ids, route, body):
    Account = app.db.models.Account
    targets = []
    for uid in account_ids:
        acc = Account.get(uid)
        if acc is not None and acc.frontend:
            targets.append((uid, acc.frontend))
    app.channel_service.push_by_uids(route, body, targets)


def open(app, msg, session):
    Account = app.db.models.Account
    acc = Account.get_or_create(session.uid, gold=msg.get("gold", 0), branch=msg.get("branch"))
    acc.frontend = session.frontend_id
    return {"code": 200, "gold": acc.gold, "server": app.server_id, "in_tx": current() is not None}


def balance(app, msg, session):
    Account = app.db.models.Account
    return {"code": 200, "gold": Account.get(msg.get("uid", session.uid)).gold}


def transfer(app, msg, session):
    Account = app.db.models.Account
    src, dst, amount = msg["from"], msg["to"], msg["amount"]
    a = Account.get(src)
    if msg.get("pause"):
        gevent.sleep(msg["pause"])  # widens the window in which the opposite transfer locks dst
    b = Account.get(dst)
    if a is None or b is None:
        raise HandlerError({"code": 404, "error": "no such account"})
    if a.gold < amount:
        raise HandlerError({"code": 409, "error": "not enough gold"})
    a.gold -= amount
    b.gold += amount
    _push_to(app, [src, dst], "onTransfer", {"from": src, "to": dst, "amount": amount})
    return {"code": 200}


def fail_after_write(app, msg, session):
    Account = app.db.models.Account
    Account.get(session.uid).gold += 1000
    _push_to(app, msg["notify"], "onMoney", {"bad": True})
    app.rpc.bank.bankRemote.note.notify(session.uid, "must not arrive")
    raise RuntimeError("the handler failed after writing and pushing")


def marker(app, msg, session):
    _push_to(app, msg["notify"], "onMoney", {"marker": msg["n"]})
    return {"code": 200}


def slow(app, msg, session):
    Account = app.db.models.Account
    Account.get(session.uid).gold += 1
    _push_to(app, msg.get("notify", []), "onMoney", {"uncommitted": True})
    if msg.get("inside_file"):  # tells a test "written, not committed" (pushes would wait for commit)
        with builtins.open(msg["inside_file"], "w"):  # (this module's own `open` is a handler)
            pass
    gevent.sleep(msg["seconds"])
    return {"code": 200}


def inc(app, msg, session):
    Counter = app.db.models.Counter
    c = Counter.get_or_create(msg.get("key", "c"))
    c.n += 1
    return {"code": 200, "n": c.n}


def pay(app, msg, session):
    Account = app.db.models.Account
    acc = Account.get(session.uid)
    acc.gold += msg["amount"]
    return {"code": 200, "gold": acc.gold}


def branch(app, msg, session):
    Account = app.db.models.Account
    return {"code": 200, "ids": [a.id for a in Account.find_by("branch", msg["branch"])]}
