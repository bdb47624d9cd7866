"""Hook commands (and every other value) survive a renewal file byte for byte, in lehttpd's and certbot's hands."""
import io
from pathlib import Path

import pytest

from lehttpd.errors import UsageError
from lehttpd.model import ChallengeSetup, Hooks, IssueRequest
from lehttpd.renewal_conf import parse, render, to_request

HOOKS = [
    '"/bin/true" "x"',                       # the issue's example: read back as /bin/true" "x before
    "'/usr/sbin/apachectl' graceful",
    'echo "it\'s done"',                     # both quote kinds
    "echo a,b >> /tmp/log",                 # a comma makes a configobj list unless quoted
    "systemctl reload apache2 # and log it",  # '#' starts a comment unless quoted
    "echo $RENEWED_LINEAGE; date +%Y-%m-%d %(x)s %%",
    "  spaced  ",
    "ends with '",
    'printf \'%s\\n\' "a b"',
]


def request_with(hook: str, webroot: Path | None = None) -> IssueRequest:
    challenge = ChallengeSetup("webroot", webroot=webroot) if webroot else ChallengeSetup()
    return IssueRequest(names=("a.example",), server="https://ca.example/dir", cert_name="a.example",
                        challenge=challenge, hooks=Hooks(hook, hook, hook))


@pytest.mark.parametrize("hook", HOOKS)
def test_hooks_round_trip_byte_for_byte(tmp_path, hook):
    request = request_with(hook)
    again = to_request(parse(render(request, "acct", tmp_path), "a.conf"), request.names, "a.example", "a.conf")
    assert again.hooks == Hooks(hook, hook, hook)


@pytest.mark.parametrize("hook", HOOKS)
def test_certbot_reads_lehttpds_hooks_and_lehttpd_reads_certbots(tmp_path, hook):
    configobj = pytest.importorskip("configobj")  # certbot's reader and writer (the `test` extra installs it)
    text = render(request_with(hook, webroot=Path("/var/www/my site")), "acct", tmp_path)
    # certbot reads with configobj's %(name)s interpolation on; it has no escape for it, so such a hook is
    # checked with interpolation off (lehttpd itself never interpolates).
    theirs = configobj.ConfigObj(text.splitlines(), encoding="utf-8", interpolation="%(" not in hook)
    assert theirs["renewalparams"]["pre_hook"] == hook
    assert theirs["renewalparams"]["webroot_path"] == ["/var/www/my site"]
    # certbot rewrites the file with configobj: lehttpd still reads the same command.
    out = io.BytesIO()
    theirs.write(outfile=out)
    conf = parse(out.getvalue().decode(), "a.conf")
    assert (conf.params["pre_hook"], conf.params["renew_hook"]) == (hook, hook)
    assert to_request(conf, ("a.example",), "a.example", "a.conf").challenge.webroot == Path("/var/www/my site")


def test_a_hook_that_cannot_be_quoted_is_refused_when_written(tmp_path):
    with pytest.raises(UsageError, match="pre_hook.*cannot be stored"):
        render(request_with("a ''' b \"\"\" c'\""), "acct", tmp_path)
