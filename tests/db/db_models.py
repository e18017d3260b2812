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
