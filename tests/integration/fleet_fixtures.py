"""Helpers for the fleet tests: throwaway lineages with renewal files, fleet nodes on one machine."""
from __future__ import annotations

import io
from pathlib import Path

from lehttpd import cli
from lehttpd.console import Console
from lehttpd.model import CertificateFiles, ChallengeSetup, IssueRequest
from lehttpd.renewal_conf import render
from lehttpd.sandbox.tls import throwaway_ca_and_leaf
from lehttpd.store import CertStore


def local_lineage(config_dir: Path, name: str, server: str = "https://127.0.0.1:14000/dir",
                  ca_bundle: Path | None = None):
    """A throwaway certificate for `name`, with a renewal file, through the real CertStore."""
    pair = throwaway_ca_and_leaf((name,))
    store = CertStore(config_dir)
    request = IssueRequest(names=(name,), server=server, ca_bundle=ca_bundle,
                           challenge=ChallengeSetup(http_port=80, http_address="127.0.0.1"))
    with store.lock(name):
        return store.save_version(name, CertificateFiles(pair.leaf_pem, pair.ca_pem, pair.key_pem),
                                  render(request, "acct", store.config_dir))


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.run([str(a) for a in argv], Console(stdout=out, stderr=err, color=False))
    return code, out.getvalue(), err.getvalue()


def etcd_flags(endpoints: list[str], tls_files: tuple[Path, Path, Path] | None = None) -> list[str]:
    flags = ["--etcd", ",".join(endpoints)]
    if tls_files:
        flags += ["--cacert", str(tls_files[0]), "--cert", str(tls_files[1]), "--key", str(tls_files[2])]
    return flags
