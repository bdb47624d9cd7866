"""The settings `harden` remembers in its options file, and how one run's flags change them."""
from __future__ import annotations

import pytest

from lehttpd.apache.harden_settings import HardenSettings, SettingsChange, conflicts, merge, read_settings
from lehttpd.errors import UsageError

TWO_YEARS = 63072000


def test_the_settings_line_is_read_back_as_written():
    settings = HardenSettings(profile="modern", hsts=TWO_YEARS, hsts_subdomains=True, uir=True, staple_ocsp=True)
    assert read_settings(f"# Managed\n{settings.line()}\nSSLProtocol -all\n".encode()) == settings


def test_a_file_of_an_earlier_lehttpd_is_read_from_its_directives():
    old = (b"# Mozilla Guideline v5.8, old profile; generated\nSSLProtocol -all +TLSv1.2\n"
           b'Header always set Strict-Transport-Security "max-age=31536000; includeSubDomains"\n'
           b'Header always set Content-Security-Policy "upgrade-insecure-requests"\n')
    assert read_settings(old) == HardenSettings(profile="old", hsts=31536000, hsts_subdomains=True, uir=True)
    assert read_settings(None) == HardenSettings()


def test_flags_change_only_what_they_name():
    before = HardenSettings(hsts=TWO_YEARS, uir=True)
    after = merge(before, SettingsChange(staple_ocsp=True), TWO_YEARS)
    assert after == HardenSettings(hsts=TWO_YEARS, uir=True, staple_ocsp=True)
    assert merge(after, SettingsChange(remove=frozenset({"hsts"})), TWO_YEARS) == \
        HardenSettings(uir=True, staple_ocsp=True)
    assert merge(HardenSettings(), SettingsChange(hsts=-1), TWO_YEARS).hsts == TWO_YEARS  # --hsts alone


@pytest.mark.parametrize("before, change, reason", [
    (HardenSettings(), SettingsChange(hsts_preload=True), "needs HSTS"),
    (HardenSettings(), SettingsChange(hsts=86400, hsts_preload=True), "at least 31536000 (one year), not 86400"),
    (HardenSettings(hsts=TWO_YEARS, hsts_preload=True), SettingsChange(hsts=600), "not 600"),
])
def test_a_preload_the_list_would_refuse_is_refused(before, change, reason):
    with pytest.raises(UsageError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        merge(before, change, TWO_YEARS)


def test_a_flag_and_its_no_flag_contradict():
    with pytest.raises(UsageError, match="contradict"):
        conflicts(SettingsChange(uir=True, remove=frozenset({"uir"})))
