"""The directory's pure parts: who owns a uid, and one owner's shard."""
import pytest

from zpomelo.uid_directory import DirectoryShard, group_by_owner, owner_of

pytestmark = pytest.mark.timeout(30)

FRONTENDS = ["connector-1", "connector-2", "connector-3"]
UIDS = ["player-%d" % n for n in range(6000)]


def test_every_server_computes_the_same_owner_whatever_the_order():
    for uid in UIDS[:200]:
        assert owner_of(uid, FRONTENDS) == owner_of(uid, list(reversed(FRONTENDS)))
    assert owner_of("x", []) is None


def test_owners_share_the_uids_about_evenly():
    groups = group_by_owner(UIDS, FRONTENDS)
    assert set(groups) == set(FRONTENDS)
    for uids in groups.values():
        assert 1700 < len(uids) < 2300, {k: len(v) for k, v in groups.items()}


def test_a_frontend_joining_takes_only_its_share_and_leaving_gives_only_its_share_back():
    before = {uid: owner_of(uid, FRONTENDS) for uid in UIDS}
    after = {uid: owner_of(uid, FRONTENDS + ["connector-4"]) for uid in UIDS}
    moved = [uid for uid in UIDS if before[uid] != after[uid]]
    assert all(after[uid] == "connector-4" for uid in moved)       # nothing moves between the old ones
    assert 1200 < len(moved) < 1800                                  # about a quarter
    without_2 = {uid: owner_of(uid, ["connector-1", "connector-3"]) for uid in UIDS}
    assert all(without_2[uid] == before[uid] for uid in UIDS if before[uid] != "connector-2")


def test_claims_of_one_uid_displace_the_older_session_only_in_single_mode():
    shard = DirectoryShard()
    assert shard.claim("ann", "c1", 1) == []
    assert shard.claim("ann", "c1", 1) == []                         # the same session again
    assert shard.claim("ann", "c2", 7) == [("c1", 1)]
    assert shard.lookup(["ann", "bob"]) == {"ann": [["c2", 7]]}
    assert shard.claim("ann", "c3", 9, single=False) == []
    assert shard.lookup(["ann"]) == {"ann": [["c2", 7], ["c3", 9]]}


def test_a_release_only_forgets_its_own_session():
    shard = DirectoryShard()
    shard.claim("ann", "c1", 1)
    shard.claim("ann", "c2", 2)                                      # displaces c1/1
    assert not shard.release("ann", "c1", 1)                         # the kicked one closing
    assert shard.lookup(["ann"]) == {"ann": [["c2", 2]]}
    assert shard.release("ann", "c2", 2)
    assert shard.lookup(["ann"]) == {} and len(shard) == 0 and shard.by_frontend == {}


def test_a_full_sync_replaces_exactly_that_frontends_entries():
    shard = DirectoryShard()
    shard.claim("ann", "c1", 1)
    shard.claim("bob", "c1", 2)
    shard.claim("cid", "c2", 3)
    shard.replace_frontend("c1", [("bob", 2), ("dan", 4)], ["c1", "c2"])
    assert shard.lookup(["ann", "bob", "cid", "dan"]) == {"bob": [["c1", 2]], "cid": [["c2", 3]],
                                                           "dan": [["c1", 4]]}
    assert shard.unsynced(["c1", "c2"]) == ["c2"]
    assert shard.unsynced(["c1", "c2", "c3"]) == ["c1", "c2", "c3"]  # c1 synced under another view


def test_a_frontend_that_left_takes_its_entries_and_unowned_entries_go():
    shard = DirectoryShard()
    shard.claim("ann", "c1", 1)
    shard.claim("bob", "c2", 2)
    shard.claim("bob", "c1", 5, single=False)
    shard.drop_frontend("c1")
    assert shard.lookup(["ann", "bob"]) == {"bob": [["c2", 2]]}
    shard.keep_owned(lambda uid: uid != "bob")
    assert len(shard) == 0 and shard.by_frontend == {}
