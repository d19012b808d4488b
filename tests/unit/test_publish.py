import os

import pytest

from pipelines import publish


def make(path, text):
    os.makedirs(path)
    with open(os.path.join(path, "f"), "w") as f:
        f.write(text)


def read(path):
    with open(os.path.join(path, "f")) as f:
        return f.read()


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_swap_replaces_whole_folder(tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(publish, "_renameat2", None)
    live, new = str(tmp_path / "live"), str(tmp_path / "new")
    make(new, "v1")
    publish.swap_in(new, live)              # first publish: plain rename
    assert read(live) == "v1" and not os.path.exists(new)
    make(new, "v2")
    seen = []
    publish.swap_in(new, live, before_delete=lambda: seen.append(read(live)))
    assert seen == ["v2"] and read(live) == "v2"
    assert sorted(os.listdir(tmp_path)) == ["live"]   # the old version is gone


def test_recover_puts_back_a_version_orphaned_between_renames(tmp_path):
    live = str(tmp_path / "live")
    make(live + ".old-1234abcd", "v1")          # crash after live -> old, before new -> live
    assert publish.recover(live) is True
    assert read(live) == "v1"
    make(live + ".old-99999999", "stale")       # a leftover beside a live folder is just removed
    assert publish.recover(live) is False
    assert sorted(os.listdir(tmp_path)) == ["live"]
