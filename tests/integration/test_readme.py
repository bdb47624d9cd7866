"""The README's commands, run as written against a local Pebble and a private Apache, so that it cannot drift.

Every line of every ```sh block of README.md is listed below, in README order, either in a SCENE (the state it
runs in, and the exit status it must end with) or in NOT_RUN with the reason and the test that covers it
instead. `test_every_readme_command_is_run_or_accounted_for` fails when the README gains, loses or changes a
command, so an example cannot change without this file.

What `localize` changes in a line, and only this (everything else runs as written):
- `lehttpd …` runs this checkout's `python -m lehttpd …`; a leading `sudo` is dropped (the tests run as root);
- flags that point the command at the sandbox instead of the real machine are appended when the subcommand takes
  them and the line does not give them: `--config-dir` (a temp folder, not /etc/letsencrypt), `--work-dir`,
  `--apache-ctl` and `--https-port` (the private Apache), `--server` and `--ca-bundle` (Pebble) for `issue`,
  `--http-port`/`--http-address 127.0.0.1` (Pebble's http-01 port) for a standalone `issue`, `--agree-tos` for
  an `issue` in a fresh folder (a user agreed at the first one), `--root` (a temp root) for `timer`; the log goes
  to a temp folder through LEHTTPD_LOG_DIR (tests/conftest.py);
- paths and names of the real machine: `/var/www/html` and `/var/www/blog` are the private Apache's document
  roots, `apache2ctl` (in hooks) its control script, `systemctl stop|start nginx` (the server holding port 80)
  that control script's stop|start, a scanned `https://blog.example.com/` its plain-HTTP
  loopback address (no DNS here), port 5002 a free port, `.venv/bin/python` this interpreter, and the example
  `scan --undo` run name the run the `--fix` before it made.
"""
from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from apache_instance import apache_available, make_instance, make_lineage  # noqa: E402

from lehttpd.cli import build_parser  # noqa: E402
from lehttpd.sandbox.pebble import free_port  # noqa: E402

REPO = Path(__file__).resolve().parents[2]

NOT_RUN = {
    "make demo": "tests/integration/test_demo.py runs the demo's code",
    "make test": "it is what runs this test",
    "pipx install .": "tests/integration/test_packaging.py installs the wheel in a fresh virtualenv",
    "pip install .": "tests/integration/test_packaging.py",
    "python -m build": "tests/integration/test_packaging.py builds the sdist and the wheel with it",
    "sudo cp contrib/lehttpd-renew.service contrib/lehttpd-renew.timer /etc/systemd/system/":
        "writes the real system; `timer install --root` writes the same files (test_renew_files)",
    "sudo systemctl daemon-reload && sudo systemctl enable --now lehttpd-renew.timer": "changes the real system",
    "systemctl list-timers lehttpd-renew.timer": "reads the real system's timers",
    "sudo cp contrib/cron.d/lehttpd /etc/cron.d/lehttpd": "writes the real system; see `timer install --kind cron`",
    "make man completions": "tests/unit/test_docs_gen.py runs the generator these targets run",
    "make install-docs": "installs into /usr/local; what it copies is what tests/unit/test_docs_gen.py generates",
    "lehttpd fleet init --etcd https://10.0.0.5:2379,https://10.0.0.6:2379,https://10.0.0.7:2379 "
    "--cacert /etc/etcd/ca.pem --cert /etc/etcd/node.pem --key /etc/etcd/node.key "
    "--challenge-webroot /var/www/acme --reload-command 'apache2ctl graceful'":
        "names other machines; tests/integration/test_fleet_etcd.py runs init (TLS with these flags) on loopback",
    "lehttpd fleet join --etcd … --fleet-key /root/fleet.key --challenge-webroot /var/www/acme "
    "--reload-command 'apache2ctl graceful'": "test_fleet_etcd.py and test_fleet_pebble.py join nodes on loopback",
    "systemctl enable --now lehttpd-fleet-agent": "changes the real system; test_fleet_pebble.py runs the agents",
    "lehttpd fleet status": "test_fleet_pebble.py checks status against a three-member etcd",
    "lehttpd check example.org": "needs DNS and port 443; tests/integration/test_check_apache.py grades the same way",
    "lehttpd check 127.0.0.1:8443 --sni example.org --ca-bundle private-ca.pem --http-port 8080":
        "tests/integration/test_check_apache.py runs this form against private Apaches (each profile, A+ to C)",
    "lehttpd check example.org --json --min-grade A":
        "needs DNS; test_check_apache.py::test_min_grade_below_is_exit_8 runs --json --min-grade",
}


@dataclass
class Scene:
    """The state some README lines run in: what to start first, then each line with the exit status it must have."""

    setup: str
    lines: list[tuple[str, int]]


SCENES = {
    "first issue": Scene("pebble", [
        ("lehttpd issue example.com -d www.example.com --email admin@example.com --agree-tos", 0)]),
    "issue with hooks stopping the server on the port": Scene("apache on pebble's port", [
        ('lehttpd issue example.com --pre-hook "systemctl stop nginx" --post-hook "systemctl start nginx"', 0)]),
    "issue through the webroot": Scene("apache on pebble's port", [
        ("lehttpd issue example.com --webroot /var/www/html", 0)]),
    "local pebble": Scene("nothing", [(".venv/bin/python -m lehttpd.sandbox.pebble --http-port 5002", 0)]),
    "renewal": Scene("issued", [
        ("lehttpd renew", 0), ("lehttpd renew --dry-run", 0), ("lehttpd timer install", 0),
        ("sudo lehttpd timer install", 0), ("sudo lehttpd timer install --kind cron", 0),
        ("sudo lehttpd timer install --check", 0),
        ("sudo lehttpd timer install --check --prometheus /var/lib/prometheus/node-exporter/lehttpd.prom", 0),
        ("sudo lehttpd timer remove", 0)]),
    "revoke and delete": Scene("issued", [
        ("lehttpd revoke --cert-name example.com --reason keycompromise", 0),
        ("lehttpd delete --cert-name example.com --yes", 0)]),
    "apache": Scene("apache with a lineage", [
        ("lehttpd apache vhosts", 0), ("lehttpd install --cert-name example.com --redirect", 0),
        ("lehttpd redirect -d example.com", 0), ("lehttpd harden --profile intermediate --hsts --uir", 0),
        ("lehttpd harden --vhost example.com", 0), ("lehttpd harden --staple-ocsp", 0),
        ("lehttpd harden --no-hsts", 0), ("lehttpd rollback --list", 0),
        ("lehttpd rollback --checkpoints 2 --dry-run", 0), ("lehttpd rollback --checkpoints 2", 0),
        ("lehttpd install --cert-name example.com --emit", 0), ("lehttpd check --all", 0),
        ("lehttpd check --all --warn-days 21 --prometheus /var/lib/prometheus/node-exporter/lehttpd.prom", 0)]),
    "issue and install": Scene("apache on pebble's port", [
        ("lehttpd issue example.com --webroot /var/www/html --install --redirect", 0)]),
    "scan": Scene("blog", [
        ("lehttpd scan /var/www/blog --site-url https://blog.example.com/", 8),
        ("lehttpd scan https://blog.example.com/ --crawl --max-pages 500", 8),
        ("lehttpd scan --vhost blog.example.com", 8),
        ("lehttpd scan /var/www/blog --site-url https://blog.example.com/ --fix --dry-run", 8),
        ("lehttpd scan /var/www/blog --site-url https://blog.example.com/ --fix --probe", 0),
        ("lehttpd scan --undo", 0), ("lehttpd scan --undo 20261129T051502.123456Z", 0),
        ("lehttpd scan https://blog.example.com/ --crawl --vhost blog.example.com", 8),
        ("lehttpd scan /var/www/blog --format sarif > mixed-content.sarif", 8)]),
}

BLOG_PAGE = ('<html><head><script src="http://blog.example.com/app.js"></script></head>\n'
             '<body><img src="http://blog.example.com/logo.png"><a href="/about.html">about</a></body></html>\n')


def _https_status(box: "Sandbox", name: str) -> str:
    import socket
    import ssl

    root = box.tmp / "pebble-root.pem"
    root.write_bytes(box.pebble.root_pem())
    context = ssl.create_default_context(cafile=str(root))  # full verification: chain and name
    with socket.create_connection(("127.0.0.1", box.apache.https_port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=name) as tls:
            tls.sendall(f"GET / HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
            return tls.recv(65536).decode(errors="replace").split("\r\n")[0]


def _check_files(*relative: str, under: str = "", contains: str = "", absent: bool = False):
    def check(box: "Sandbox") -> None:
        base = box.config if under == "config" else box.tmp / under if under else box.tmp
        for name in relative:
            path = base / name
            assert path.exists() != absent, path
            if contains:
                assert contains in path.read_text(), path
    return check


def _check_blog_fixed(box: "Sandbox") -> None:
    docroot = box.apache.docroot("blog.example.com")
    page = (docroot / "index.html").read_text()
    assert 'src="/app.js"' in page and "http://blog.example.com" not in page
    assert not list(docroot.glob("*.lehttpd-bak")), "no backup in the served folder"
    runs = list((box.tmp / "work" / "scan" / "runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "manifest.json").exists()
    box.paths["20261129T051502.123456Z"] = runs[0].name  # the README's run name is an example


def _check_blog_restored(box: "Sandbox") -> None:
    assert (box.apache.docroot("blog.example.com") / "index.html").read_text() == BLOG_PAGE


def _check_headers(hsts: bool):
    def check(box: "Sandbox") -> None:
        text = (box.apache.confdir / "lehttpd" / "options-ssl.conf").read_text()
        assert ("Strict-Transport-Security" in text) == hsts, text
        assert 'Content-Security-Policy "upgrade-insecure-requests"' in text, text
    return check


# What a line promises beyond its exit status (README's words), checked right after it ran.
CHECKS = {
    "lehttpd issue example.com -d www.example.com --email admin@example.com --agree-tos":
        _check_files("live/example.com/fullchain.pem", "renewal/example.com.conf", under="config"),
    "lehttpd issue example.com --webroot /var/www/html": _check_files("live/example.com/privkey.pem", under="config"),
    "sudo lehttpd timer install --kind cron": _check_files("root/etc/cron.d/lehttpd", contains="renew --quiet"),
    "sudo lehttpd timer remove": _check_files("root/etc/cron.d/lehttpd", absent=True),
    "lehttpd delete --cert-name example.com --yes": _check_files("live/example.com", under="config", absent=True),
    "lehttpd issue example.com --webroot /var/www/html --install --redirect":
        lambda box: _https_status(box, "example.com").startswith("HTTP/1.1 200") or pytest.fail("not served"),
    "lehttpd scan /var/www/blog --site-url https://blog.example.com/ --fix --probe": _check_blog_fixed,
    "lehttpd harden --staple-ocsp": _check_headers(hsts=True),
    "lehttpd harden --no-hsts": _check_headers(hsts=False),
    "lehttpd check --all --warn-days 21 --prometheus /var/lib/prometheus/node-exporter/lehttpd.prom":
        _check_files("lehttpd.prom", contains="lehttpd_certificate_expiry"),
    "lehttpd scan --undo 20261129T051502.123456Z": _check_blog_restored,
    "lehttpd scan /var/www/blog --format sarif > mixed-content.sarif":
        _check_files("mixed-content.sarif", contains='"version": "2.1.0"'),
}


def readme_commands() -> list[str]:
    """Every command line of the README's sh blocks, comments removed, in order."""
    text = (REPO / "README.md").read_text()
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        block = re.sub(r"\\\n\s*", "", block)  # a line continued with a backslash is one command
        for line in block.splitlines():
            line = re.split(r"\s+#\s", line.strip(), maxsplit=1)[0].strip()
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


def test_every_readme_command_is_run_or_accounted_for():
    planned = [line for scene in SCENES.values() for line, _ in scene.lines]
    assert len(planned) == len(set(planned))
    assert sorted(readme_commands()) == sorted([*planned, *NOT_RUN]), "README changed: update SCENES/NOT_RUN"
    in_readme_order = [line for line in readme_commands() if line in planned]
    for scene in SCENES.values():
        mine = [line for line, _ in scene.lines]
        assert [line for line in in_readme_order if line in mine] == mine, "a scene runs its lines in README order"


@dataclass
class Sandbox:
    """Where the README's names point in this test."""

    tmp: Path
    config: Path
    pebble: object = None
    apache: object = None
    paths: dict[str, str] = field(default_factory=dict)  # README text -> local text
    fresh: bool = True  # no account yet: `issue` needs --agree-tos


def _options_of(argv: list[str]) -> set[str]:
    parser = build_parser(argv)
    for word in argv:
        if word.startswith("-"):
            continue
        choices = next((a.choices for a in parser._actions if hasattr(a, "choices") and isinstance(a.choices, dict)),
                       None)
        if not choices or word not in choices:
            break
        parser = choices[word]
    return {option for action in parser._actions for option in action.option_strings}


def localize(line: str, box: Sandbox) -> tuple[list[str], str | None]:
    """(argv, file to write stdout to) for one README line: see the module docstring."""
    line, _, redirect = line.partition(" > ")
    for readme_text, local in box.paths.items():
        line = line.replace(readme_text, local)
    argv = shlex.split(line)
    if argv[0] == "sudo":
        argv = argv[1:]
    if argv[0] == ".venv/bin/python":
        return [sys.executable, *argv[1:], "--dir", str(box.tmp / "pebble-dir"), "--config-dir",
                str(box.config)], None
    assert argv[0] == "lehttpd", line
    options, words = _options_of(argv[1:]), argv[1:]
    extra: list[str] = []

    def add(flag: str, *value: str, when: bool = True) -> None:
        if when and flag in options and flag not in words:
            extra.extend([flag, *value])

    add("--config-dir", str(box.config))
    add("--work-dir", str(box.tmp / "work"))
    add("--root", str(box.tmp / "root"))
    apache_wanted = {"scan": "--vhost" in words, "issue": "--install" in words}.get(words[0], True)
    if box.apache is not None and apache_wanted:
        add("--apache-ctl", str(box.apache.ctl))
        add("--https-port", str(box.apache.https_port))
    if words[0] == "issue":
        add("--server", box.pebble.directory_url)
        add("--ca-bundle", str(box.pebble.ca_bundle))
        add("--agree-tos", when=box.fresh)
        add("--http-port", str(box.pebble.http_port), when="--webroot" not in words)
        add("--http-address", "127.0.0.1", when="--webroot" not in words)
    return [sys.executable, "-m", "lehttpd", *words, *extra], redirect.strip() or None


def _setup(kind: str, tmp: Path, make_pebble) -> Sandbox:
    box = Sandbox(tmp=tmp, config=tmp / "le")
    if kind == "nothing":
        return box
    if kind in ("pebble", "issued", "apache on pebble's port"):
        box.pebble = make_pebble()
    if kind == "issued":
        issued = subprocess.run(localize("lehttpd issue example.com -d www.example.com", box)[0],
                                capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert issued.returncode == 0, issued.stderr
        box.fresh = False
    if kind in ("apache on pebble's port", "apache with a lineage", "blog"):
        if not apache_available():
            pytest.skip("Debian apache2 (and root) needed")
        port = box.pebble.http_port if box.pebble else None
        box.apache = make_instance(tmp / "apache", http_port=port)
        site = "blog.example.com" if kind == "blog" else "example.com"
        box.apache.add_site(site)
        docroot = str(box.apache.docroot(site))
        box.paths.update({"/var/www/html": docroot, "/var/www/blog": docroot, "apache2ctl": str(box.apache.ctl),
                          # the server holding the port here is the private Apache, stopped and started the same way
                          "systemctl stop nginx": f"{box.apache.ctl} stop",
                          "systemctl start nginx": f"{box.apache.ctl} start",
                          "/var/lib/prometheus/node-exporter/lehttpd.prom": str(tmp / "lehttpd.prom"),
                          "lehttpd scan https://blog.example.com/":
                              f"lehttpd scan http://127.0.0.1:{box.apache.http_port}/"})
        if kind == "blog":
            for page in ("index.html", "about.html"):
                (box.apache.docroot(site) / page).write_text(BLOG_PAGE)
        box.apache.start()
    if kind == "apache with a lineage":
        make_lineage(box.config, "example.com", ("example.com", "www.example.com"))
    return box


def _run_local_pebble(argv: list[str], box: Sandbox) -> None:
    """The sandbox Pebble line: it prints the flags of `lehttpd issue`; those flags must issue."""
    port = str(free_port())
    argv[argv.index("5002")] = port
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    try:
        lines = [proc.stdout.readline() for _ in range(2)]
        assert lines[0].startswith("Pebble is running"), lines + [proc.stderr.read() if proc.poll() else ""]
        printed = shlex.split(lines[1])
        assert printed[:2] == ["lehttpd", "issue"]
        issued = subprocess.run([sys.executable, "-m", "lehttpd", *printed[1:]], capture_output=True, text=True,
                                timeout=120, stdin=subprocess.DEVNULL)
        assert issued.returncode == 0, issued.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


@pytest.mark.parametrize("name", list(SCENES))
def test_the_readme_runs_as_written(name, tmp_path, make_pebble):
    scene = SCENES[name]
    box = _setup(scene.setup, tmp_path, make_pebble)
    try:
        for line, expected in scene.lines:
            argv, redirect = localize(line, box)
            if line.startswith(".venv/bin/python -m lehttpd.sandbox.pebble"):
                _run_local_pebble(argv, box)
                continue
            result = subprocess.run(argv, capture_output=True, text=True, timeout=180, cwd=tmp_path,
                                    stdin=subprocess.DEVNULL, env={**os.environ, "COLUMNS": "200"})
            if redirect:
                (tmp_path / redirect).write_text(result.stdout)
            assert result.returncode == expected, f"{line}\n-> {shlex.join(argv)}\n{result.stdout}{result.stderr}" + (
                f"\nApache's error log:\n{box.apache.error_log()}" if box.apache else "")
            assert "unexpected" not in result.stderr, result.stderr
            if line.startswith("lehttpd issue"):
                box.fresh = False
            if line in CHECKS:
                CHECKS[line](box)
    finally:
        if box.apache is not None:
            box.apache.stop()
