"""The game's documents. Fields are typed; indexed fields can be looked up in a transaction."""
from zpomelo.db import Field, Model


class Player(Model):
    collection = "players"
    name = Field(str, default="")
    frontend = Field(str, default=None)          # the connector holding the player's connection
    area_id = Field(str, default=None, index=True)
    team_id = Field(str, default=None, index=True)
    x = Field(int, default=0)
    y = Field(int, default=0)
    gold = Field(int, default=100)
    items = Field(list, default=list)


class Area(Model):
    collection = "areas"
    name = Field(str, default="")
    visits = Field(int, default=0)


class Team(Model):
    collection = "teams"
    name = Field(str, default="")
