from zpomelo.db import Field, Model


class Account(Model):
    collection = "accounts"
    gold = Field(int, default=0)
    frontend = Field(str, default=None)
    branch = Field(str, default=None, index=True)


class Counter(Model):
    collection = "counters"
    n = Field(int, default=0)
