"""`lehttpd scan --vhost NAME` finds the document root through a real (private) Apache's configuration."""
import json

import pytest

from lehttpd.sandbox.apache import apache_available, make_instance
from tests.conftest import run_lehttpd

pytestmark = pytest.mark.skipif(not apache_available(), reason="Debian apache2 (and root) needed")


def test_scan_by_vhost_name_reads_the_docroot_apache_serves(tmp_path):
    inst = make_instance(tmp_path / "apache")
    inst.add_site("scanme.test")
    (inst.docroot("scanme.test") / "post.html").write_text(
        '<p><img src="http://scanme.test/cat.png"><script src="http://cdn.example.test/x.js"></script></p>')
    result = run_lehttpd("scan", "--vhost", "www.scanme.test", "--apache-ctl", str(inst.ctl), "--format", "json")
    assert result.returncode == 8, result.stderr
    document = json.loads(result.stdout)
    assert document["target"] == str(inst.docroot("scanme.test"))
    assert document["site_url"] == "https://www.scanme.test/"
    urls = sorted(f["url"] for page in document["pages"] for f in page["findings"])
    assert urls == ["http://cdn.example.test/x.js", "http://scanme.test/cat.png"]
    unknown = run_lehttpd("scan", "--vhost", "nobody.test", "--apache-ctl", str(inst.ctl))
    assert unknown.returncode == 2 and "no Apache vhost with a DocumentRoot serves nobody.test" in unknown.stderr
