"""Breakdowns that add up, country names, TLS banners in words."""
from pipelines.report.breakdowns import REST, UNIDENTIFIED, country_name, tls_values, value_table
from pipelines.report.tls import alert_text, suite_name, tls_parts, tls_text


def test_rows_add_up_to_the_port_total_with_rest_and_unidentified():
    values = [("a", 50, 40), ("b", 30, 30), ("c", 12, 12), ("other", 5, 5)]
    t = value_table("s", "T", "2013-W37", values, (120, 100), 2, 10)
    assert [r[0] for r in t.rows] == ["a", "b", REST, UNIDENTIFIED]
    assert [r[1] for r in t.rows] == [50, 30, 17, 23] and sum(r[1] for r in t.rows) == 120
    assert sum(r[3] for r in t.rows) == 100
    assert abs(sum(r[2] for r in t.rows) - 1) < 1e-9
    assert t.note.startswith("Top 2 of 3 values seen on at least 10 hosts")
    # nothing known at all: no table (and so no empty download)
    assert value_table("s", "T", "w", [], (120, 100), 2, 10) is None
    assert value_table("s", "T", "w", [("other", 4, 4)], (120, 100), 2, 10) is not None


def test_country_rows_carry_names_and_codes():
    t = value_table("s", "T", "w", [("DE", 20, 20), ("TW", 10, 10)], (30, 30), 10, 10, country=True)
    assert t.rows == (("Germany", "DE", 20, 20 / 30, 20), ("Taiwan", "TW", 10, 10 / 30, 10))
    assert country_name("KR") == "South Korea" and country_name("ZZ") == "ZZ"


def test_masscan_tls_banners_in_words():
    assert tls_parts("TLS/1.0 cipher:0x4, <host>") == ("TLS 1.0", "TLS_RSA_WITH_RC4_128_MD5", ", <host>")
    assert tls_text("TLS/1.2 cipher:0xc02f") == "TLS 1.2, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
    assert tls_text("SSLv3 cipher:0x5") == "SSL 3.0, TLS_RSA_WITH_RC4_128_SHA"
    assert suite_name(0xBEEF) == "unassigned or unknown suite 0xBEEF"
    assert alert_text("ALERT(0x0228)") == "TLS alert: fatal handshake_failure (40)"
    assert tls_parts("SSH-2.0-OpenSSH_4.3") is None and tls_text("HTTP/1.1 200") == "HTTP/1.1 200"
    versions, suites = tls_values([("TLS/1.0 cipher:0x4", 5, 4), ("TLS/1.0 cipher:0x5", 3, 3),
                                   ("TLS/1.1 cipher:0x4", 2, 2), ("other", 9, 9), ("ALERT(0x0228)", 1, 1)])
    assert versions == [("TLS 1.0", 8, 7), ("TLS 1.1", 2, 2)]
    assert suites == [("TLS_RSA_WITH_RC4_128_MD5", 7, 6), ("TLS_RSA_WITH_RC4_128_SHA", 3, 3)]
