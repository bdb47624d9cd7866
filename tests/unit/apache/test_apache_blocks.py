"""The listing's plain block reader (blocks.py) against Augeas: same directives, same values, or it declines."""
from __future__ import annotations

from pathlib import Path

import pytest

from lehttpd.apache.blocks import FileLines, read_block
from lehttpd.apache.discover import ApacheInfo, VhostLocation
from lehttpd.apache.layouts import DEBIAN
from lehttpd.apache.tree import ConfigParseError, ConfigReader
from lehttpd.apache.vhosts import LISTING_DIRECTIVES, read_listing, read_vhosts, vhost_from_block

CORPUS = Path(__file__).resolve().parents[4] / "shared" / "corpus" / "apache-configs"


def _directives(node):
    return [(c.name, c.args, c.line, c.end) for c in node.children if not c.is_block]


def _vhost_nodes(parsed):
    return [n for n in parsed.walk() if n.is_block and n.name.lower() == "virtualhost"]


def _agree(path: Path, data: bytes, reader: ConfigReader) -> tuple[int, int]:
    """Every <VirtualHost> Augeas finds in `data`: the plain reader gives the same direct directives (names,
    arguments as written, lines, where each ends) and the same VirtualHost, or declines. Returns (read, declined)."""
    parsed = reader.parse_bytes(path, data)
    lines = FileLines(data)
    read = declined = 0
    for node in _vhost_nodes(parsed):
        plain = read_block(lines, node.line)
        if plain is None:
            declined += 1
            continue
        read += 1
        assert plain.line == node.line and plain.args == node.args
        assert _directives(plain) == _directives(node), f"{path}:{node.line}"
        for mine, theirs in zip(plain.children, (c for c in node.children if not c.is_block)):
            assert mine.start <= theirs.start and not data[mine.start:theirs.start].strip()  # indentation only
        shown = read_block(lines, node.line, LISTING_DIRECTIVES)  # what the listing reads
        assert shown.children == tuple(c for c in plain.children if c.name.lower() in LISTING_DIRECTIVES)
        location = VhostLocation(path, node.line, tuple(node.values), "listed.name")
        for port in (443, 8443):
            assert vhost_from_block(location, parsed, plain, port, {"X": "y"}) == \
                vhost_from_block(location, parsed, node, port, {"X": "y"})
    return read, declined


@pytest.mark.skipif(not CORPUS.is_dir(), reason="corpus absent")
def test_plain_reader_agrees_with_augeas_on_every_corpus_vhost():
    reader = ConfigReader()
    read = declined = 0
    for path in sorted(p for p in CORPUS.rglob("*") if p.is_file() and not p.is_symlink()):
        data = path.read_bytes()
        if b"<VirtualHost" not in data and b"<virtualhost" not in data.lower():
            continue
        try:
            counts = _agree(path, data, reader)
        except ConfigParseError:
            continue  # Augeas rejects the file: nothing to compare with
        read, declined = read + counts[0], declined + counts[1]
    assert read >= 20, (read, declined)  # the comparison is not vacuous


PLAIN = [
    b"<VirtualHost *:80>\n    ServerName a.test\n    ServerAlias b.test c.test\n    DocumentRoot /srv/a\n"
    b"</VirtualHost>\n",
    b"# c\n\n<VirtualHost 10.0.0.1:80 [::1]:80>\n\tServerName \"a.test\"\n    # ServerName commented.test\n"
    b"    <Directory /srv/a>\n        ServerAlias not.direct.test\n        Options -Indexes\n    </Directory>\n"
    b"    <IfModule mod_ssl.c>\n        SSLEngine on\n    </IfModule>\n"
    b"    ServerAlias 'quoted.test' \\\n        continued.test\n"
    b"    DocumentRoot \"/srv/with space\"\n    SSLCertificateFile /etc/x.pem\n</VirtualHost>\n",
    b"<VirtualHost *:443>\r\n  ServerName a.test\r\n  SSLEngine On\r\n  SSLCertificateFile /c.pem\r\n"
    b"  SSLCertificateKeyFile /k.pem\r\n  SSLCertificateChainFile /ch.pem\r\n</VirtualHost>\r\n",
    "<VirtualHost *:80>\n    # café, naïve\n    ServerName é.test\n    DocumentRoot /srv/é\n</VirtualHost>\n".encode(),
    b"<VirtualHost *:80>\n    ServerName a.test\n    Header set X-Y \"a \\\"b\\\"\"\n    ServerName a # not a comment\n"
    b"</VirtualHost>\n<VirtualHost *:80>\n    # Managed by lehttpd for certificate a.test\n    ServerName b\n"
    b"</VirtualHost>\n",
    b"<virtualhost *:80>\n    # a comment that goes on \\\n    ServerName in.the.comment\n    servername a.test\n"
    b"    <Location />  \n    </Location>  \n    DocumentRoot\n</virtualhost>\n",
    b"<VirtualHost *:80>\n    ServerName a.test\n    # BEGIN lehttpd redirect\n    RewriteEngine on\n"
    b"    RewriteCond %{REQUEST_URI} !^/\\.well-known/acme-challenge/\n"
    b"    RewriteRule ^ https://%{SERVER_NAME}%{REQUEST_URI} [END,NE,R=301]\n"
    b"    RewriteRule ^/(.*)\\.php$ /$1 [L]\n    Header set X-A b\"c \\d\n    ServerAlias \\x.test\n</VirtualHost>\n",
    "<VirtualHost *:80>\n    ServerName a\u00a0b.test\n    DocumentRoot /srv/\u00e9t\u00e9\n</VirtualHost>\n".encode(),
]


@pytest.mark.parametrize("data", PLAIN)
def test_plain_reader_agrees_with_augeas_on_written_cases(data, tmp_path):
    read, declined = _agree(tmp_path / "a.conf", data, ConfigReader())
    assert read >= 1 and declined == 0


DECLINED = [
    b"<VirtualHost *:80>\n    ServerName a.test\n    SSLRequire %{SSL_CIPHER} in {\"RC4\", \"NULL\"}\n</VirtualHost>\n",
    b"<VirtualHost *:80>\n    ServerAlias a\\ b\n</VirtualHost>\n",
    b"<VirtualHost *:80>\n    ServerName \"a.test\"x\n</VirtualHost>\n",
    b"<VirtualHost *:80>\n    Header set X \"a \\\n b\"\n</VirtualHost>\n",
    b"<VirtualHost *:80> \\\n  *:81>\n    ServerName a\n</VirtualHost>\n",
    b"<VirtualHost *:80>\n    <Perl>\n    </Perl>\n</VirtualHost>\n",
    b"<VirtualHost *:80>\n    ServerName a\n",
]


@pytest.mark.parametrize("data", DECLINED)
def test_plain_reader_declines_what_it_does_not_know(data):
    assert read_block(FileLines(data), 1) is None


def test_plain_reader_needs_the_tag_on_the_listed_line():
    data = b"\n<VirtualHost *:80>\n    ServerName a\n</VirtualHost>\n"
    assert read_block(FileLines(data), 1) is None and read_block(FileLines(data), 3) is None
    assert read_block(FileLines(data), 2).named("servername")[0].values == ("a",)
    assert read_block(FileLines(data), 99) is None


def _info(locations, defines=()) -> ApacheInfo:
    return ApacheInfo(ctl=None, version=(2, 4, 62), server_root=Path("/"), config_file=Path("/apache2.conf"),
                      mpm="event", modules=frozenset(), includes=(), locations=tuple(locations), layout=DEBIAN,
                      defines=tuple(defines))


def test_listing_substitutes_defines_and_falls_back_to_augeas_in_apache_order(tmp_path):
    plain = tmp_path / "plain.conf"
    plain.write_bytes(b"<VirtualHost *:80>\n    ServerName ${SITE}\n    ServerAlias www.${SITE} ${UNSET}\n"
                      b"    DocumentRoot ${ROOT}/site\n</VirtualHost>\n")
    odd = tmp_path / "odd.conf"  # a brace word list: the plain reader declines, Augeas reads it
    odd.write_bytes(b"<VirtualHost *:443>\n    ServerName odd.test\n    SSLEngine on\n"
                    b"    SSLRequire %{SSL_CIPHER} in {\"RC4\", \"NULL\"}\n    SSLCertificateFile /c.pem\n"
                    b"</VirtualHost>\n")
    bad = tmp_path / "bad.conf"  # neither reader: reported with path and line, the others still listed
    bad.write_bytes(b"<VirtualHost *:80>\n    ServerName \"bad\n    Foo {\n</VirtualHost>\n")
    gone = tmp_path / "gone.conf"
    locations = [VhostLocation(odd, 1, ("*:443",), "odd.test"), VhostLocation(bad, 1, ("*:80",), "bad"),
                 VhostLocation(plain, 1, ("*:80",), "s.test", ("www.s.test",)),
                 VhostLocation(gone, 1, ("*:80",), "gone.test")]
    info = _info(locations, (("SITE", "s.test"), ("ROOT", "/srv")))
    vhosts, errors = read_listing(info)
    assert [v.file for v in vhosts] == [odd, plain]
    assert vhosts[0].ssl and vhosts[0].cert_file == "/c.pem" and vhosts[0].server_name == "odd.test"
    assert vhosts[1].server_name == "s.test" and vhosts[1].aliases == ("www.s.test", "${UNSET}")
    assert vhosts[1].document_root == "/srv/site" and not vhosts[1].ssl
    messages = " ".join(e.message for e in errors)
    assert f"{bad}:" in messages and f"{gone}" in messages and "cannot read" in messages
    # the Augeas path (what install plans on) substitutes the same way
    full, _parsed, _errors = read_vhosts(info, [locations[2]])
    assert full[0] == vhosts[1]


FAKE_CTL = """#!/bin/sh
if [ "$1" = "-V" ]; then printf 'Server version: Apache/2.4.62 (Debian)\\nServer MPM:     event\\n'; exit 0; fi
[ -n "$SLOW" ] && exec sleep 30
cat <<'DUMP'
VirtualHost configuration:
*:80                   is a NameVirtualHost
         port 80 namevhost a.test ({site}:1)
                 alias www.a.test
ServerRoot: "{root}"
Define: DUMP_VHOSTS
Define: SITE=a.test
DUMP
"""


def _fake_ctl(tmp_path: Path) -> Path:
    site = tmp_path / "a.conf"
    site.write_text("<VirtualHost *:80>\n    ServerName ${SITE}\n    ServerAlias www.${SITE}\n</VirtualHost>\n")
    ctl = tmp_path / "fakectl"
    ctl.write_text(FAKE_CTL.format(site=site, root=tmp_path))
    ctl.chmod(0o755)
    return ctl


def test_discovery_started_early_is_read_once_and_listed(tmp_path):
    from lehttpd.apache.reading import Source, list_vhosts

    source = Source(apache_ctl=str(_fake_ctl(tmp_path))).start()
    assert source.started is not None and Source(server_root=tmp_path).start().started is None  # static: none
    info, vhosts, errors = list_vhosts(source, 443)
    assert not errors and info.version == (2, 4, 62) and info.server_root == tmp_path
    assert [(v.server_name, v.aliases, v.line) for v in vhosts] == [("a.test", ("www.a.test",), 1)]
    source.cancel()  # after reading: nothing to stop, no error
    with pytest.raises(RuntimeError):
        source.started.result()


def test_discovery_started_early_is_stopped_when_the_command_fails_first(tmp_path, monkeypatch):
    import signal

    from lehttpd.apache.reading import Source

    monkeypatch.setenv("SLOW", "1")  # the dump call sleeps 30 s: only a kill ends it now
    source = Source(apache_ctl=str(_fake_ctl(tmp_path))).start()
    version, dump = source.started._procs
    source.cancel()
    assert dump.returncode == -signal.SIGKILL and version.returncode is not None


def test_read_bytes_reads_whole_files_and_raises_like_pathlib(tmp_path):
    from lehttpd.apache.blocks import read_bytes

    for size in (0, 10, 1 << 16, (1 << 16) + 1, 3 << 20):
        path = tmp_path / f"f{size}"
        path.write_bytes(bytes(i % 251 for i in range(size)))
        assert read_bytes(path) == path.read_bytes()
    with pytest.raises(FileNotFoundError):
        read_bytes(tmp_path / "missing")
    with pytest.raises(IsADirectoryError):
        read_bytes(tmp_path)


def test_a_plain_block_is_listed_though_the_lens_rejects_another_block_of_its_file(tmp_path):
    path = tmp_path / "two.conf"  # Apache splits "x.test\ry.test" in two words; the lens refuses a bare \r
    path.write_bytes(b"<VirtualHost *:80>\n    ServerName a.test\n</VirtualHost>\n"
                     b"<VirtualHost *:80>\n    ServerName b.test\n    ServerAlias x.test\ry.test\n</VirtualHost>\n")
    locations = [VhostLocation(path, 1, ("*:80",), "a.test"), VhostLocation(path, 4, ("*:80",), "b.test")]
    listed, errors = read_listing(_info(locations))
    assert [v.server_name for v in listed] == ["a.test"]
    assert len(errors) == 1 and f"{path}:" in errors[0].message
    full, _parsed, full_errors = read_vhosts(_info(locations))  # what install reads: the file is refused whole
    assert full == [] and len(full_errors) == 1


@pytest.mark.skipif(not CORPUS.is_dir(), reason="corpus absent")
@pytest.mark.parametrize("root, config", [
    ("debian_apache_2_4/multiple_vhosts/apache2", None), ("debian_apache_2_4/multi_vhosts/apache2", None),
    ("debian_apache_2_4/augeas_vhosts/apache2", None), ("debian_apache_2_4/default_vhost/apache2", None),
    ("centos7_apache/apache/httpd", "conf/httpd.conf"), ("gentoo_apache/apache/apache2", "httpd.conf"),
    ("complex_parsing", "apache2.conf")])
def test_listing_of_each_corpus_tree_equals_the_augeas_read(root, config):
    from lehttpd.apache.static import discover_static

    info, _parsed, _errors = discover_static(CORPUS / root, Path(config) if config else None)
    listed, errors = read_listing(info)
    full, _parsed, full_errors = read_vhosts(info)
    assert [v.as_json() for v in listed] == [v.as_json() for v in full]
    assert [e.message for e in errors] == [e.message for e in full_errors]
