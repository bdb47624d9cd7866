"""The small frozen values passed between stages (issuance, store, renewal, apache)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

LETSENCRYPT_PRODUCTION = "https://acme-v02.api.letsencrypt.org/directory"
LETSENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"


@dataclass(frozen=True)
class KeySpec:
    """What kind of private key a certificate gets."""

    key_type: str = "ecdsa"  # "ecdsa" | "rsa"
    rsa_key_size: int = 2048
    elliptic_curve: str = "secp256r1"


@dataclass(frozen=True)
class Hooks:
    pre: str | None = None
    post: str | None = None
    deploy: str | None = None


@dataclass(frozen=True)
class ChallengeSetup:
    """How http-01 is answered: lehttpd's own server (standalone), files in a running site's docroot (webroot),
    or a temporary include in the running Apache (apache)."""

    mode: str = "standalone"  # "standalone" | "webroot" | "apache"
    http_port: int = 80
    http_address: str = ""  # "" = every address, IPv4 and IPv6
    webroot: Path | None = None  # webroot mode: the first (or only) document root
    webroot_map: tuple[tuple[str, Path], ...] = ()  # webroot mode: (name, its document root), as certbot's -w
    apache_ctl: str | None = None  # apache mode: the control program (None: found as the Apache commands find it)
    token_root: Path = Path("/var/lib/lehttpd/http-01")  # apache mode: where token files are served from


@dataclass(frozen=True)
class IssueRequest:
    """Everything needed to obtain (or renew) one certificate; also what renewal/NAME.conf remembers."""

    names: tuple[str, ...]  # already validated and IDNA-encoded, first one is the lineage name by default
    server: str = LETSENCRYPT_PRODUCTION
    cert_name: str | None = None
    email: str | None = None
    key: KeySpec = field(default_factory=KeySpec)
    reuse_key: bool = False
    challenge: ChallengeSetup = field(default_factory=ChallengeSetup)
    hooks: Hooks = field(default_factory=Hooks)
    preferred_chain: str | None = None
    ca_bundle: Path | None = None
    eab_kid: str | None = None
    eab_hmac_key: str | None = None
    profile: str | None = None  # ACME profile (draft-aaron-acme-profiles) to ask for
    profile_required: bool = False  # fail, rather than order without it, when the server does not offer it
    installer: str | None = None  # "apache" once installed into Apache (certbot's key): renew reloads it

    @property
    def lineage_name(self) -> str:
        if self.cert_name or ":" not in self.names[0]:
            return self.cert_name or self.names[0]
        # an IPv6 address, written out in full so that the folder name is valid and unambiguous:
        # ::1 -> 0000-0000-0000-0000-0000-0000-0000-0001
        import ipaddress

        return ipaddress.ip_address(self.names[0]).exploded.replace(":", "-")


@dataclass(frozen=True)
class CertificateFiles:
    """One issued version, as PEM bytes, before it is stored."""

    cert_pem: bytes
    chain_pem: bytes
    key_pem: bytes

    @property
    def fullchain_pem(self) -> bytes:
        return self.cert_pem + self.chain_pem


@dataclass(frozen=True)
class Lineage:
    """A stored certificate lineage in the certbot layout under config_dir.

    The `live/NAME/*.pem` paths are links to the newest version in `archive/NAME/`; Apache is pointed at the
    live paths, so a renewal never needs an Apache config change. Only the store makes Lineages (after
    checking the links), so these paths are the store's layout.
    """

    name: str
    config_dir: Path
    names: tuple[str, ...]
    version: int
    not_before: dt.datetime
    not_after: dt.datetime
    key_type: str  # "ecdsa" | "rsa"
    serial: int
    issuer: str

    @property
    def live_dir(self) -> Path:
        return self.config_dir / "live" / self.name

    @property
    def cert_path(self) -> Path:
        return self.live_dir / "cert.pem"

    @property
    def chain_path(self) -> Path:
        return self.live_dir / "chain.pem"

    @property
    def fullchain_path(self) -> Path:
        return self.live_dir / "fullchain.pem"

    @property
    def key_path(self) -> Path:
        return self.live_dir / "privkey.pem"

    def days_left(self, now: dt.datetime) -> float:
        return (self.not_after - now).total_seconds() / 86400
