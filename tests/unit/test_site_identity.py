"""The site's identity (operator, contact, scanner ranges) as configuration:
no site without a contact, clear messages for bad settings, and the demo's
fictional identity on the opt-out and methodology pages and every footer."""
import pytest

from pipelines.report.identity import (DEMO_SITE_CONFIG, SiteConfigError, allowed_tokens,
                                       identity_from_dict, load_site_config, strip_allowed)

GOOD = {"operator": "Census", "contact_email": "scan@example.org", "scanner_ranges": ["192.0.2.0/24"],
        "policy": "One probe per port.\n\nNo logins.", "base_url": "https://census.example.org"}


def test_a_good_table_gives_a_typed_identity():
    who = identity_from_dict(dict(GOOD, pgp_fingerprint="0123 4567 89ab cdef 0123 4567 89AB CDEF 0123 4567"))
    assert who.base_url == "https://census.example.org/"
    assert who.scanner_ranges == ("192.0.2.0/24",)
    assert who.pgp_grouped == "0123 4567 89AB CDEF 0123 4567 89AB CDEF 0123 4567"
    assert who.policy_paragraphs == ("One probe per port.", "No logins.")
    assert not who.demo and who.plan is None


@pytest.mark.parametrize("change, message", [
    ({"contact_email": None}, "needs a contact"),
    ({"contact_email": "not an address"}, "is not an e-mail address"),
    ({"contact_url": "javascript:alert(1)"}, "is not an http(s) URL"),
    ({"operator": ""}, "operator is required"),
    ({"scanner_ranges": []}, "scanner_ranges must list"),
    ({"scanner_ranges": ["192.0.2.1/24"]}, "is not a network"),
    ({"pgp_fingerprint": "abc"}, "40 hexadecimal digits"),
    ({"base_url": "census.example.org"}, "base_url"),
    ({"demo": "yes"}, "demo must be true or false"),
    ({"colour": "blue"}, "unknown setting(s): colour"),
])
def test_bad_settings_are_refused_with_the_setting_named(change, message):
    table = {k: v for k, v in dict(GOOD, **change).items() if v is not None}
    with pytest.raises(SiteConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        identity_from_dict(table)


def test_a_contact_url_alone_is_enough():
    table = {k: v for k, v in GOOD.items() if k != "contact_email"}
    assert identity_from_dict(dict(table, contact_url="https://example.org/optout")).contact_email is None


def test_files_missing_broken_or_without_a_site_table(tmp_path):
    with pytest.raises(SiteConfigError, match="No such file"):
        load_site_config(str(tmp_path / "nope.toml"))
    (tmp_path / "bad.toml").write_text("[site\n")
    with pytest.raises(SiteConfigError, match="not valid TOML"):
        load_site_config(str(tmp_path / "bad.toml"))
    (tmp_path / "other.toml").write_text("[scan]\nx = 1\n")
    with pytest.raises(SiteConfigError, match=r"no \[site\] table"):
        load_site_config(str(tmp_path / "other.toml"))


def test_a_relative_plan_is_found_beside_the_config(tmp_path):
    (tmp_path / "site.toml").write_text(
        '[site]\noperator = "C"\ncontact_email = "a@example.org"\nscanner_ranges = ["2001:db8::/32"]\n'
        'policy = "p"\nbase_url = "https://example.org/"\nplan = "plan.toml"\n')
    assert load_site_config(str(tmp_path / "site.toml")).plan == str(tmp_path / "plan.toml")


def test_the_demo_identity_is_fictional_and_its_ranges_are_allow_listed():
    who = load_site_config()
    assert who.demo and who.contact_email.endswith("@example.org")
    assert set(who.scanner_ranges) <= set(allowed_tokens())
    assert strip_allowed(b"from 198.51.100.0/24 and 2001:db8::/32.") == b"from  and ."
    assert DEMO_SITE_CONFIG.endswith("demo_site.toml")
