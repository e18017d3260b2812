"""Models shared by the store tests (also imported by the worker processes)."""
from zpomelo.db import Field, Model


class Counter(Model):
    collection = "counters"
    n = Field(int, default=0)


class Player(Model):
    collection = "players"
    name = Field(str, default="")
    gold = Field(int, default=0)
    area = Field(str, default=None, index=True)
    items = Field(list, default=list)


# transaction bodies the replication tests share (run them with db.run)
def increment(key):
    """Counter ``key`` (made at 0) plus one; its new value."""
    counter = Counter.get_or_create(key)
    counter.n += 1
    return counter.n


def move_gold(src, dst, amount=1):
    Player.get(src).gold -= amount
    Player.get(dst).gold += amount
