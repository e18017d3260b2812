"""Lookups by indexed field inside a transaction, on both engines."""
import pytest

from db_models import Player
from zpomelo.db import ValidationError


def test_find_by_follows_creates_moves_and_deletes(store):
    a, b = store(), store()
    a.run(lambda: [Player.create("u%d" % i, area="town") for i in range(3)])
    assert [p.id for p in b.run(lambda: Player.find_by("area", "town"))] == ["u0", "u1", "u2"]

    def move(uid, area):
        Player.get(uid).area = area
    b.run(move, "u1", "forest")
    a.run(lambda: Player.get("u2").delete())
    assert [p.id for p in a.run(lambda: Player.find_by("area", "town"))] == ["u0"]
    assert [p.id for p in a.run(lambda: Player.find_by("area", "forest"))] == ["u1"]
    assert b.run(lambda: Player.find_by("area", "nowhere")) == []


def test_find_by_sees_this_transactions_own_changes(db):
    db.run(lambda: Player.create("u1", area="town"))

    def look():
        Player.create("u2", area="town")
        Player.get("u1").area = "forest"
        return [p.id for p in Player.find_by("area", "town")]
    assert db.run(look) == ["u2"]


def test_find_by_needs_an_index(db):
    with pytest.raises(ValidationError, match="not indexed"):
        db.run(lambda: Player.find_by("gold", 1))
