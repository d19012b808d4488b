"""The real zmap 2.1.1 UDP fixture (tests/fixtures/real/zmap_udp500.csv) through
the real Beam pipeline: its ``data`` column becomes the IKE banner of the
clean row, identified as ike from the reply's own bytes; LZR output beside it
(JSON with zmap's saddr/sport/data names) is an unknown format, not 80/udp
(issue 15, item 4)."""
import shutil

from tests.pipeline.conftest import REAL, clean_rows, run_week
from tests.unit.test_zmap_fields import LZR_LINE

WEEK = "2026-W49"   # the fixture was made on 2026-12-02


def test_zmap_udp_payload_is_identified_as_ike(tmp_path):
    d = tmp_path / "raw" / WEEK
    d.mkdir(parents=True)
    shutil.copy(f"{REAL}/zmap_udp500.csv", d / "zmap_udp500.csv")
    (d / "lzr-80.json").write_bytes(LZR_LINE + b"\n" + LZR_LINE.replace(b"198.18.0.1", b"198.18.0.2") + b"\n")
    m = run_week(tmp_path / "raw", tmp_path / "out", week=WEEK)
    assert m["totals"]["identity_holds"] and m["totals"]["quarantined"] == 0
    lzr = next(f for f in m["files"] if f["file"].endswith("lzr-80.json"))
    assert lzr["damaged"] and [x["kind"] for x in lzr["damage"]] == ["unknown_format"] and lzr["read"] == 0
    (row,) = clean_rows(tmp_path / "out", week=WEEK).to_pylist()
    assert (row["ip"], row["port"], row["transport"], row["status"]) == ("198.18.1.4", 500, "udp", "open")
    assert list(dict(row["banners"])) == ["isakmp"]
    assert row["protocol"] == "ike"
    # The public form names the exchange and the notify type, never the cookies.
    assert row["banner_public"] == "IKEv1.0 exchange=5 notify=14"
    assert "portcens" not in row["banner_public"]
