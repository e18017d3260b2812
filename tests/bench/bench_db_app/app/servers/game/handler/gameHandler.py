"""plain: a read-modify-write of process memory (the reference); rmw: the same on a document in a
transaction; transfer: two documents (the caller's account and a random other) in one."""
import random

ACCOUNTS = 1000
MEMORY = {}


def plain(app, msg, session):
    key = "a%d" % (session.id % ACCOUNTS)
    entry = MEMORY.setdefault(key, {"gold": 1000, "n": 0})
    entry["n"] += 1
    return {"code": 200, "n": entry["n"]}


def rmw(app, msg, session):
    acc = app.db.models.Account.get_or_create("a%d" % (session.id % ACCOUNTS))
    acc.n += 1
    return {"code": 200, "n": acc.n}


def transfer(app, msg, session):
    Account = app.db.models.Account
    mine = session.id % ACCOUNTS
    other = random.randrange(ACCOUNTS - 1)
    other += other >= mine
    a = Account.get_or_create("a%d" % mine)
    b = Account.get_or_create("a%d" % other)
    a.gold -= 1
    b.gold += 1
    return {"code": 200}
