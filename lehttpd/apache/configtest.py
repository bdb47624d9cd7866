"""Apache's own config test failing at discovery, before lehttpd changed anything: one line for the admin (that
lehttpd changed nothing, Apache's first error, where the rest is) and the full output saved for reading."""
from __future__ import annotations

import re
from pathlib import Path

from lehttpd.errors import ApacheConfigError

_LONG_PATH_RE = re.compile(r"/[^\s'\"\]\[:]{100,}")
# "Syntax error on line 225 of apache2.conf: Syntax error on line 3 of site.conf: …": the Include chain down to the
# file at fault; only its last link says where the fault is
_INCLUDE_CHAIN_RE = re.compile(r"(?:Syntax error on line \d+ of [^:]+: )+(?=Syntax error on line \d+ of [^:]+: )")


def shorten_paths(line: str, keep: int = 40) -> str:
    """Paths over 100 characters shown as their start … their end: the reason after them stays readable."""
    return _LONG_PATH_RE.sub(lambda m: f"{m.group(0)[:keep]}…{m.group(0)[-keep:]}", line)


def first_error(stderr: str) -> str:
    """Apache's first complaint as one line (a line ending in ':' joined to its detail), long paths shortened."""
    lines = [line.strip() for line in stderr.splitlines()
             if line.strip() and "AH00558" not in line and not line.startswith("Action '")]
    if not lines:
        return "no message"
    line = f"{lines[0]} {lines[1]}" if lines[0].endswith(":") and len(lines) > 1 else lines[0]
    line = shorten_paths(_INCLUDE_CHAIN_RE.sub("", line))
    return line if len(line) <= 400 else f"{line[:240]}…{line[-150:]}"


class BrokenBeforeUs(ApacheConfigError):
    """The configuration fails Apache's own test at discovery, before lehttpd changed anything. The message is
    one line; `output` (Apache's stderr, then its stdout) is what `save` writes for the admin to read."""

    def __init__(self, ctl: tuple[str, ...], stderr: str, stdout: str, saved: Path | None = None) -> None:
        self.ctl, self.stderr, self.stdout = ctl, stderr, stdout
        rest = f"full output in {saved}" if saved else f"run `{' '.join(ctl)} -t` for all of it"
        super().__init__(f"lehttpd changed nothing: Apache's configuration was already broken (its own config test "
                         f"fails). Apache says: {first_error(stderr or stdout)} — {rest}")

    def save(self, folder: Path) -> "BrokenBeforeUs":
        """The same error, its full output written to FOLDER/configtest-<time>.txt (0600); unchanged if that fails."""
        import time

        from lehttpd.fileio import atomic_write, make_dir

        path = folder / f"configtest-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.txt"
        command = " ".join(self.ctl) + " -t -D DUMP_VHOSTS -D DUMP_RUN_CFG -D DUMP_INCLUDES -D DUMP_MODULES"
        try:
            make_dir(folder, 0o700)
            atomic_write(path, f"$ {command}\n{self.stderr}{self.stdout}".encode(errors="replace"), 0o600)
        except OSError:
            return self
        return BrokenBeforeUs(self.ctl, self.stderr, self.stdout, saved=path)
