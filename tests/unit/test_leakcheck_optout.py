"""Opted-out hosts are in no clean or quarantine row, yet the leak check must
know them: glued spellings of exactly those hosts are blocked (issue 14)."""
import pytest

from pipelines.leakcheck import Allowlist, Shape, WeekAddresses, scan_text
from pipelines.optout_state import apply


@pytest.mark.parametrize("text", ["ip10.20.16.40", "ec2-10-20-16-40", "0x0a141028", "host 2001-db8--40"])
def test_glued_spellings_of_an_opted_out_host_are_week_addresses(tmp_path, text):
    out = tmp_path / "out"
    out.mkdir()
    listed = tmp_path / "optout.txt"
    listed.write_text("10.20.16.32/28\n2001:db8::40\n")
    apply(str(out), str(listed))
    week = WeekAddresses.from_out(str(out), [])
    assert week.optout_v4
    hits = scan_text("weeks/x/index.html", f"<p>{text}</p>", week, Allowlist())
    assert [h.shape for h in hits] == [Shape.WEEK_ADDRESS]


def test_an_address_outside_the_recorded_ranges_is_not_a_week_address(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    listed = tmp_path / "optout.txt"
    listed.write_text("10.20.16.32/28\n")
    apply(str(out), str(listed))
    week = WeekAddresses.from_out(str(out), [])
    assert scan_text("a.html", "<p>ec2-10-20-16-48 0x0a141030</p>", week, Allowlist()) == []
