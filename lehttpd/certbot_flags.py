"""certbot's flag names, as data: each is an alias of a lehttpd flag, a no-op where lehttpd already does what it
asks, a path turned into the lineage it names, or refused with the lehttpd way in the message.

Aliases are declared on the parsers themselves (so that help, the man page and completions show them); this
table names them so that a test holds the parsers to it. Everything else is handled by `translate_certbot_flags`
on the command line before argparse sees it; a test fails if a lehttpd command ever gets a flag of the same name
(the row must then go: lehttpd's own flag wins).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from lehttpd.errors import UsageError

ALIAS, NO_OP, PATH, REFUSED = "alias", "no-op", "lineage path", "refused"


@dataclass(frozen=True)
class CertbotFlag:
    certbot: str
    kind: str                    # ALIAS, NO_OP, PATH or REFUSED
    lehttpd: str = ""            # the lehttpd flag (ALIAS, PATH) or what lehttpd does instead
    commands: tuple[str, ...] = ()  # where it applies ("issue", "account update"); () for every command
    takes_value: bool = False    # NO_OP and REFUSED flags: does it eat the next word?


CERTBOT_FLAGS: tuple[CertbotFlag, ...] = (
    CertbotFlag("-n", ALIAS, "--non-interactive"),
    CertbotFlag("-m", ALIAS, "--email", ("issue", "account update")),
    CertbotFlag("-w", ALIAS, "--webroot", ("issue",)),
    CertbotFlag("--webroot-path", ALIAS, "--webroot", ("issue",)),
    CertbotFlag("--domains", ALIAS, "--domain", ("issue",)),
    CertbotFlag("--test-cert", ALIAS, "--staging", ("issue", "renew")),
    CertbotFlag("--http-01-port", ALIAS, "--http-port", ("issue",)),
    CertbotFlag("--http-01-address", ALIAS, "--http-address", ("issue",)),
    CertbotFlag("--renew-by-default", ALIAS, "--force-renewal", ("issue", "renew")),
    CertbotFlag("--logs-dir", ALIAS, "--log-dir"),
    CertbotFlag("--expand", NO_OP, "lehttpd adds new names to a lineage without being asked", ("issue",)),
    CertbotFlag("--register-unsafely-without-email", NO_OP,
                "lehttpd registers without a contact address when --email is not given", ("issue",)),
    CertbotFlag("--no-eff-email", NO_OP, "lehttpd gives the address to no mailing list", ("issue",)),
    CertbotFlag("--keep-until-expiring", NO_OP, "lehttpd keeps a lineage that is not due", ("issue",)),
    CertbotFlag("--keep", NO_OP, "lehttpd keeps a lineage that is not due", ("issue",)),
    CertbotFlag("--no-redirect", NO_OP, "lehttpd adds the redirect only with --redirect", ("issue", "install")),
    CertbotFlag("--cert-path", PATH, "--cert-name", ("revoke", "install", "delete")),
    CertbotFlag("--key-path", PATH, "--cert-name", ("revoke", "install")),
    CertbotFlag("--fullchain-path", PATH, "--cert-name", ("install",)),
    CertbotFlag("--chain-path", PATH, "--cert-name", ("install",)),
    CertbotFlag("--nginx", REFUSED, "lehttpd configures Apache only"),
    CertbotFlag("--manual", REFUSED, "lehttpd validates with http-01 only (standalone, or --webroot PATH)"),
    CertbotFlag("--preferred-challenges", REFUSED, "lehttpd validates with http-01 only", takes_value=True),
    CertbotFlag("--csr", REFUSED, "lehttpd makes the key and CSR itself (--key-type, --reuse-key)",
                takes_value=True),
    CertbotFlag("--hsts", REFUSED, "HSTS is set by `lehttpd harden --hsts` once the certificate is installed",
                ("issue", "install")),
    CertbotFlag("--uir", REFUSED, "run `lehttpd harden --uir` once the certificate is installed",
                ("issue", "install")),
    CertbotFlag("--staple-ocsp", REFUSED, "run `lehttpd harden --staple-ocsp` once the certificate is installed",
                ("issue", "install")),
    CertbotFlag("--eff-email", REFUSED, "lehttpd subscribes no address to the EFF's mailing list", ("issue",)),
    CertbotFlag("--must-staple", REFUSED, "lehttpd does not request OCSP Must-Staple (Let's Encrypt ended OCSP)"),
    CertbotFlag("--max-log-backups", REFUSED, "lehttpd rotates its log by size and keeps 5 old files",
                takes_value=True),
    CertbotFlag("--no-verify-ssl", REFUSED, "lehttpd never turns TLS verification off: give --ca-bundle FILE"),
)
COMMAND_ALIASES = {"certonly": "issue"}  # certbot's `run` is `issue --install`, said when refused
REFUSED_COMMANDS = {"run": "lehttpd's way is `lehttpd issue … --install [--redirect]`",
                    "register": "an account is created by `lehttpd issue`; see `lehttpd account`",
                    "update_account": "use `lehttpd account update --email ADDRESS`",
                    "unregister": "use `lehttpd account deactivate`"}
_LINEAGE_FILE = re.compile(r"/(?:live/(?P<live>[^/]+)/[a-z]+\.pem|archive/(?P<archive>[^/]+)/[a-z]+\d+\.pem)$")


def _command_index(argv: Sequence[str]) -> int | None:
    return next((i for i, arg in enumerate(argv) if not arg.startswith("-")), None)


def _lookup(flag: str, command: str | None) -> CertbotFlag | None:
    for entry in CERTBOT_FLAGS:
        if entry.certbot == flag and entry.kind != ALIAS and (not entry.commands or command in entry.commands):
            return entry
    return None


def lineage_of_path(flag: str, path: str) -> str:
    found = _LINEAGE_FILE.search(path)
    if not found:
        raise UsageError(f"{flag} {path}: lehttpd works on lineages; give --cert-name NAME "
                         "(a path it accepts is CONFIG_DIR/live/NAME/FILE.pem or archive/NAME/FILEn.pem)")
    return found.group("live") or found.group("archive")


def translate_certbot_flags(argv: Sequence[str]) -> list[str]:
    """argv with certbot's no-ops dropped, lineage paths turned into --cert-name, and refused flags refused."""
    argv = list(argv)
    index = _command_index(argv)
    command = argv[index] if index is not None else None
    if command in REFUSED_COMMANDS:
        raise UsageError(f"`{command}` is certbot's command: {REFUSED_COMMANDS[command]}")
    if command in COMMAND_ALIASES:
        argv[index] = command = COMMAND_ALIASES[command]
    out: list[str] = []
    lineages: dict[str, str] = {}
    certbot_webroot = any(arg == "-w" or arg.startswith("--webroot-path") for arg in argv)
    words = iter(enumerate(argv))
    for position, arg in words:
        flag, _, inline = arg.partition("=")
        entry = _lookup(flag, command) if arg.startswith("--") and position != index else None
        if command == "issue" and arg == "--webroot" and certbot_webroot and _is_flag_or_end(argv, position + 1):
            continue  # certbot's `--webroot -w PATH`: --webroot there only picks the plugin
        if entry is None:
            out.append(arg)
            continue
        value = inline if inline or "=" in arg else None
        if value is None and (entry.takes_value or entry.kind == PATH):
            value = next(words, (None, ""))[1]
        if entry.kind == REFUSED:
            raise UsageError(f"{flag} is certbot's; {entry.lehttpd}")
        if entry.kind == PATH:
            lineages[flag] = lineage_of_path(flag, value)
    return out + _lineage_flag(lineages, out)


def _is_flag_or_end(argv: Sequence[str], position: int) -> bool:
    return position >= len(argv) or argv[position].startswith("-")


def _lineage_flag(lineages: dict[str, str], argv: Sequence[str]) -> list[str]:
    names = set(lineages.values())
    if not names:
        return []
    if len(names) > 1:
        raise UsageError("the certificate and key paths name different lineages: " + ", ".join(sorted(names)))
    name = names.pop()
    given = [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "--cert-name"]
    if given and given != [name]:
        raise UsageError(f"--cert-name {given[0]} and {next(iter(lineages))} (lineage {name}) disagree")
    return [] if given else ["--cert-name", name]
