import pyarrow as pa

from pipelines.merge import merge_bucket
from pipelines.normalize import normalize_batch
from pipelines.responders import ResponderThresholds, annotate
from tests.helpers import raw_batch, lab_limits

T = 1_379_000_000


def clean(rows):
    return merge_bucket(pa.Table.from_batches([normalize_batch(raw_batch(rows), lab_limits()).work]), "w").clean


def port_rows(ip, port, banners, ts=T):
    rows = [dict(ip=ip, port=port, transport="tcp", status="open", timestamp=ts)]
    rows += [dict(ip=ip, port=port, transport="tcp", service=s, banner=b, timestamp=ts + 1)
             for s, b in banners.items()]
    return rows


def by_ip(t):
    return {(r["ip"], r["port"]): r for r in t.to_pylist()}


def test_forwarded_network_is_one_group_and_neighbours_are_not():
    rows = []
    # 203.0.113.0/24: 200 addresses answer :22 with the same identification string;
    # HTTP headers differ per connection (Date) but server+title are the same box
    for i in range(1, 201):
        rows += port_rows(f"203.0.113.{i}", 22, {"ssh": b"SSH-2.0-OpenSSH_4.3"})
        rows += port_rows(f"203.0.113.{i}", 80, {"http.server": b"mini_httpd", "title": b"Router",
                                                  "http": f"HTTP/1.0 200 OK\r\nDate: {i}".encode()})
    # a hosting /24 with 40 identical images among 100 responders: below the share threshold
    for i in range(1, 101):
        rows += port_rows(f"198.51.100.{i}", 22, {"ssh": b"SSH-2.0-OpenSSH_5.3" if i <= 40 else f"SSH-2.0-x{i}".encode()})
    t = annotate(clean(rows))
    r = by_ip(t)
    g22 = {r[(f"203.0.113.{i}", 22)]["responder_group"] for i in range(1, 201)}
    g80 = {r[(f"203.0.113.{i}", 80)]["responder_group"] for i in range(1, 201)}
    assert len(g22) == 1 and None not in g22
    assert len(g80) == 1 and None not in g80 and g80 != g22
    assert all(r[(f"198.51.100.{i}", 22)]["responder_group"] is None for i in range(1, 101))


def test_thresholds_are_options_and_silent_ports_never_group():
    rows = []
    for i in range(1, 21):
        rows += port_rows(f"192.0.2.{i}", 23, {})          # open, no banner
        rows += port_rows(f"192.0.2.{i}", 21, {"ftp": b"220 ready"})
    low = ResponderThresholds(min_hosts=20, min_share=1.0)
    r = by_ip(annotate(clean(rows), low))
    assert {r[(f"192.0.2.{i}", 21)]["responder_group"] for i in range(1, 21)} != {None}
    assert {r[(f"192.0.2.{i}", 23)]["responder_group"] for i in range(1, 21)} == {None}
    r = by_ip(annotate(clean(rows), ResponderThresholds(min_hosts=21)))
    assert {r[(f"192.0.2.{i}", 21)]["responder_group"] for i in range(1, 21)} == {None}


def test_many_ports_flag_counts_open_ports_of_each_address():
    rows = []
    for port in range(1, 11):
        rows += port_rows("192.0.2.7", port, {})
    rows += port_rows("192.0.2.8", 22, {})
    rows.append(dict(ip="192.0.2.8", port=23, transport="tcp", status="closed", timestamp=T))
    r = by_ip(annotate(clean(rows), ResponderThresholds(many_ports=8)))
    assert r[("192.0.2.7", 5)]["host_open_ports"] == 10 and r[("192.0.2.7", 5)]["many_ports"]
    assert r[("192.0.2.8", 22)]["host_open_ports"] == 1 and not r[("192.0.2.8", 22)]["many_ports"]


def test_host_keys_split_boxes_but_missing_keys_do_not():
    def rows_for(net, key_of):
        rows = []
        for i in range(1, 41):
            rows += port_rows(f"{net}.{i}", 22, {"ssh": b"SSH-2.0-OpenSSH_7.4"})
            fp = key_of(i)
            if fp:   # a zgrab2 record of the same port, with the host key
                rows.append(dict(ip=f"{net}.{i}", port=22, transport="tcp", status="open", timestamp=T + 9,
                                 key_algorithm="ssh-ed25519", key_fingerprint_sha256=fp, key_bits=256))
        return rows
    same_or_none = rows_for("192.0.2", lambda i: "aa" * 32 if i % 4 == 0 else None)
    two_keys = rows_for("198.51.100", lambda i: ("aa" if i % 2 else "bb") * 32)
    r = by_ip(annotate(clean(same_or_none + two_keys)))
    assert {r[(f"192.0.2.{i}", 22)]["responder_group"] for i in range(1, 41)} != {None}
    assert len({r[(f"192.0.2.{i}", 22)]["responder_group"] for i in range(1, 41)}) == 1
    assert {r[(f"198.51.100.{i}", 22)]["responder_group"] for i in range(1, 41)} == {None}
