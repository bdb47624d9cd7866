"""Test helpers around the private Apache instance (lehttpd.sandbox.apache) and throwaway lineages."""
from __future__ import annotations

from pathlib import Path

from lehttpd.model import CertificateFiles
from lehttpd.sandbox.apache import ENVVARS, ApacheInstance, apache_available, make_instance  # noqa: F401
from lehttpd.sandbox.pebble import free_port  # noqa: F401
from lehttpd.sandbox.tls import throwaway_ca_and_leaf
from lehttpd.store import CertStore


def make_lineage(config_dir: Path, name: str, names: tuple[str, ...], renewable: bool = True):
    """A throwaway CA and a leaf for `names`, saved through the real CertStore (certbot layout), with a renewal
    file as `lehttpd issue` writes one (unless not `renewable`)."""
    from lehttpd.model import IssueRequest
    from lehttpd.renewal_conf import render

    pair = throwaway_ca_and_leaf(names)
    files = CertificateFiles(cert_pem=pair.leaf_pem, chain_pem=pair.ca_pem, key_pem=pair.key_pem)
    conf = render(IssueRequest(names=names, server="https://ca.invalid/dir", cert_name=name), "acct1",
                  config_dir) if renewable else None
    # Apache's workers never read keys (the parent does, as root); the store's 0700 dirs are fine.
    return CertStore(config_dir).save_version(name, files, conf)


def open_work_dir():
    """A lehttpd --work-dir straight under /tmp, 0711: Apache's workers must traverse it to read challenge files,
    and pytest resets its own /tmp/pytest-of-USER to 0700 whenever another session starts on the machine."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="lehttpd-work-", dir="/tmp"))
    folder.chmod(0o711)
    return folder
