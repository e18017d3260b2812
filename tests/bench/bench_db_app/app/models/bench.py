from zpomelo.db import Field, Model


class Account(Model):
    collection = "accounts"
    gold = Field(int, default=1000)
    n = Field(int, default=0)
