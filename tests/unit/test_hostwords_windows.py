"""Windows default machine names are host words in free text (issue 14)."""
import pytest

from scanners.protocols.hostwords import is_host_word, redact_host_words
from scanners.protocols.redact import redact


@pytest.mark.parametrize("text, name", [
    ("220 Welcome to JOHNS-PC FTP service", "JOHNS-PC"),
    ("220 (vsFTPd 3.0.3) WIN-7H3J2K1L0M9", "WIN-7H3J2K1L0M9"),
    ("220 DESKTOP-4F2K9QX Microsoft ESMTP MAIL Service ready", "DESKTOP-4F2K9QX"),
    ("+OK ANNA-LAPTOP POP3 server ready", "ANNA-LAPTOP"),
])
def test_windows_machine_names_are_redacted_in_free_text(text, name):
    assert is_host_word(name)
    out = redact_host_words(text)
    assert name not in out and "<host>" in out
    assert name not in redact(text, free=True)      # the free-text redaction of a greeting


@pytest.mark.parametrize("token", ["WIN-7H3J", "Pure-FTPd", "PC", "Non-Authoritative"])
def test_near_misses_stay(token):
    assert not is_host_word(token)
