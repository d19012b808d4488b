"""How each protocol module turns a banner into the subject its rules see
(the parse half of "parse, then match"), and that host names stay out."""
from __future__ import annotations

from scanners.protocols import smtp
from scanners.protocols.rules import load_rules


def test_smtp_greeting_is_code_domain_and_text():
    got = smtp.parse("220-mx.example.org ESMTP Exim 4.96 #2 Tue, 02 Jan 2024 11:22:33 -0500\r\n"
                     "220 and/or bulk e-mail.\r\n")
    assert (got.greeting_code, got.domain) == (220, "mx.example.org")
    assert got.subject == "ESMTP Exim 4.96 #2 Tue, 02 Jan 2024 11:22:33 -0500\nand/or bulk e-mail."
    # Servers that omit the domain: the keyword stays text, nothing is taken as a host.
    bare = smtp.parse("220 ESMTP Postfix\r\n")
    assert (bare.domain, bare.subject) == (None, "ESMTP Postfix")
    assert load_rules("smtp").identify(bare.subject).product == "Postfix"
    pix = smtp.parse("220 *****************************0*0*0****0***0*0*2000*0*0*00")
    assert pix.domain is None and load_rules("smtp").identify(pix.subject).device_type == "firewall"


def test_smtp_product_token_anywhere_after_the_domain():
    rules = load_rules("smtp")
    got = smtp.parse("220 mail.example.com ESMTP Service (IBM Domino Release 9.0.1FP10) ready at Mon, 1 Jan 2024")
    ident = rules.identify(got.subject)
    assert (ident.product, ident.version) == ("IBM Domino", "9.0.1FP10")
    assert ident.cpe == "cpe:2.3:a:ibm:domino:9.0.1fp10:*:*:*:*:*:*:*"


def test_smtp_domain_never_reaches_an_identified_value():
    # A domain that looks like a product token is not part of the subject.
    rules = load_rules("smtp")
    for banner in ("220 Exim-4.96.example.com ESMTP", "220 sendmail.example.org ready",
                   "220 postfix ESMTP", "220 MDaemon-9.6.6 SMTP ready"):
        got = smtp.parse(banner)
        assert got.domain and got.domain not in got.subject
        ident = rules.identify(got.subject)
        assert ident.rule_id is None, (banner, ident.rule_id)


def test_ftp_host_first_greetings_lose_the_host_in_the_subject():
    from scanners.protocols import ftp
    got = ftp.parse("220 ftp.example.org FTP server (Version wu-2.6.2(1) Mon Jan 1 10:00:00 UTC 2024) ready.\r\n")
    assert got.domain == "ftp.example.org" and "example" not in got.subject
    assert load_rules("ftp").identify(got.subject).version == "2.6.2"
    ipv6 = ftp.parse("220 ::ffff:192.0.2.8 FTP server (tnftpd 20100324+GSSAPI) ready.")
    assert ipv6.domain == "::ffff:192.0.2.8" and ipv6.subject.startswith("FTP server (tnftpd")
    # Product and device words in first position are not hosts.
    for banner, product in (("220 APC FTP server ready.", "APC Network Management Card FTP"),
                            ("220 FRITZ!Box7590 FTP server ready.", "FRITZ!Box FTP"),
                            ("220 Serv-U FTP Server v15.1 ready...", "Serv-U")):
        got = ftp.parse(banner)
        assert got.domain is None
        assert load_rules("ftp").identify(got.subject).product == product
    # A greeting without a host-first shape keeps its whole text.
    assert ftp.parse("220 (vsFTPd 3.0.3)").subject == "(vsFTPd 3.0.3)"


def test_mysql_subject_release_line_and_error_packets():
    from scanners.protocols import mysql
    rules = load_rules("mysql")
    got = mysql.parse("5.5.5-10.3.39-MariaDB-0+deb10u1")
    assert got.subject == "10.3.39-MariaDB-0+deb10u1\nos=Debian 10"
    ident = rules.identify(got.subject)
    assert (ident.product, ident.version, ident.os_release) == ("MariaDB", "10.3.39", "Debian 10")
    assert mysql.parse("5.5.5-10.6.16-11-MariaDB-enterprise-log").version == "10.6.16-11-MariaDB-enterprise-log"
    # The error message names the server; the host in it never reaches the subject.
    refused = mysql.parse(b"\x3f\x00\x00\x00\xff\x6a\x04Host 'scanner.example.net' is not allowed "
                          b"to connect to this MariaDB server")
    assert (refused.error_code, refused.subject, refused.flavor) == (1130, "error 1130 MariaDB", "MariaDB")
    assert rules.identify(refused.subject).product == "MariaDB"
    busy = mysql.parse(b"\xff\x10\x04Too many connections")
    assert busy.subject == "error 1040" and rules.identify(busy.subject).rule_id is None
    # Any other version-shaped handshake is a MySQL-protocol server.
    assert rules.identify(mysql.parse("5.6.10-proxy").subject).rule_id == "mysql-protocol"


def test_ldap_subject_levels_and_no_field_injection():
    from scanners.protocols import ldap
    rules = load_rules("ldap")
    got = ldap.parse("supportedCapabilities: 1.2.840.113556.1.4.800\ndomainFunctionality: 6\n"
                     "forestFunctionality: 5\ndnsHostName: dc9.corp.example.com\n")
    assert got.subject.endswith(";ffl=5;dfl=6;psc=") and "example" not in got.subject
    assert rules.identify(got.subject).os_release == "Windows Server 2012 R2 or later"
    # A vendorName cannot start a field of its own, a non-number level is dropped.
    forged = ldap.parse("vendorName: x;version=389-Directory/1.0;psc=9.9\ndomainFunctionality: seven\n")
    assert ";version=;" in forged.subject and ";dfl=;" in forged.subject and forged.subject.endswith(";psc=")
    assert rules.identify(forged.subject).rule_id is None
    vc = ldap.parse('{"other_attributes": {"vmwPlatformServicesControllerVersion": ["6.7.0"]}}')
    assert rules.identify(vc.subject).version == "6.7.0"
