"""The operations log: what every command that changes something did, for the admin reading it the next morning.

`/var/log/lehttpd/lehttpd.log` (`--log-dir DIR`, or `LEHTTPD_LOG_DIR`) gets one line per step the command printed,
its warnings and errors, the `-v` detail (always: a cron job runs with -q, and the 3 a.m. failure is what the log is
for) and `-vv` detail when asked, each stamped with the time and the process id, framed by the command line and
the exit status.

Rotation is by size, in-process (logging.handlers.RotatingFileHandler: 1 MiB, 5 old files), so no logrotate
configuration is needed. The folder is created 0700 and the file 0600 (lehttpd/fileio.py's make_dir); the file is
opened with O_NOFOLLOW, so a symlink planted in its place is refused, never written through. Secrets never land
there: values of secret flags are masked in the command line, and every line goes through `redact` (PEM private
keys, JWK private members, the EAB HMAC key given on the command line).
"""
from __future__ import annotations

import logging
import os
import re
import stat
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Sequence

from lehttpd.errors import StorageError
from lehttpd.fileio import make_dir

DEFAULT_LOG_DIR = Path("/var/log/lehttpd")
LOG_NAME = "lehttpd.log"
MAX_BYTES = 1024 * 1024
BACKUPS = 5
SECRET_FLAGS = ("--eab-hmac-key",)
MASK = "<redacted>"

_PEM_KEY = re.compile(r"-----BEGIN ([A-Z ]*)PRIVATE KEY-----.*?(-----END \1PRIVATE KEY-----|\Z)", re.S)
_JWK_PRIVATE = re.compile(r"""(["'](?:d|p|q|dp|dq|qi|k)["']\s*:\s*["'])[A-Za-z0-9_\-+/=]+""")


def default_log_dir() -> Path:
    return Path(os.environ.get("LEHTTPD_LOG_DIR") or DEFAULT_LOG_DIR)


def mask_argv(argv: Sequence[str]) -> list[str]:
    """The command line with the values of secret flags replaced (`--flag VALUE` and `--flag=VALUE`)."""
    masked, hide_next = [], False
    for arg in argv:
        if hide_next:
            masked.append(MASK)
            hide_next = False
        elif arg in SECRET_FLAGS:
            masked.append(arg)
            hide_next = True
        elif arg.split("=", 1)[0] in SECRET_FLAGS and "=" in arg:
            masked.append(arg.split("=", 1)[0] + "=" + MASK)
        else:
            masked.append(arg)
    return masked


def secret_values(argv: Sequence[str]) -> list[str]:
    """The values given to secret flags: masked wherever they appear in a line."""
    values = []
    for index, arg in enumerate(argv):
        if arg in SECRET_FLAGS and index + 1 < len(argv):
            values.append(argv[index + 1])
        elif "=" in arg and arg.split("=", 1)[0] in SECRET_FLAGS:
            values.append(arg.split("=", 1)[1])
    return [value for value in values if value]


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    text = _PEM_KEY.sub(f"-----{MASK} PRIVATE KEY-----", text)
    text = _JWK_PRIVATE.sub(lambda m: m.group(1) + MASK, text)
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


class _RedactingFilter(logging.Filter):
    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        self.secrets = tuple(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage(), self.secrets)
        record.args = None
        return True


class _NoFollowHandler(RotatingFileHandler):
    """A rotating handler that opens its file without following a symlink, 0600, append-only."""

    def _open(self):
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(self.baseFilename, flags, 0o600)
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            raise StorageError(f"{self.baseFilename} is not a regular file")
        if stat.S_IMODE(info.st_mode) != 0o600 and info.st_uid == os.geteuid():
            os.fchmod(fd, 0o600)
        return os.fdopen(fd, "a", encoding="utf-8", errors="backslashreplace")


def open_log(log_dir: Path, argv: Sequence[str]) -> logging.Logger:
    """A logger writing to LOG_DIR/lehttpd.log; StorageError (one line) when the file cannot be used."""
    log_dir = Path(log_dir)
    path = log_dir / LOG_NAME
    try:
        make_dir(log_dir, 0o700)
        handler = _NoFollowHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8")
    except OSError as error:
        reason = "it is a symlink, which lehttpd never follows" if os.path.islink(path) else error.strerror
        raise StorageError(f"cannot write the log {path}: {reason} (--log-dir DIR to log elsewhere)") from None
    handler.setFormatter(logging.Formatter(f"%(asctime)s [{os.getpid()}] %(levelname)s %(message)s"))
    handler.addFilter(_RedactingFilter(secret_values(argv)))
    logger = logging.Logger("lehttpd.oplog", logging.DEBUG)  # not registered: no other handler ever sees it
    logger.addHandler(handler)
    logger.info("lehttpd %s", " ".join(mask_argv(argv)))
    return logger


def close_log(logger: logging.Logger, status: int) -> None:
    logger.info("exit status %d", status)
    for handler in list(logger.handlers):
        handler.close()
        logger.removeHandler(handler)
