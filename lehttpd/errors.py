"""One exception hierarchy. Every error lehttpd expects maps to one line of text and one exit code.

Exit codes (documented in the README, stable for scripts):

    0  success
    1  unexpected internal error (a bug: rerun with --debug and report it)
    2  bad input: invalid flags, domain names, paths, config files
    3  the ACME server refused: problem documents, failed validations, rate limits
    4  network: server unreachable, time-out, TLS certificate not trusted
    5  local environment: port in use, permission denied, lock held, missing program
    6  Apache: discovery failed, config test or reload failed (changes rolled back)
    7  partial failure: some items of a batch failed (renewal of several lineages)
    8  findings: a scan or check found problems that should block a deployment
    9  a hook (pre, post or deploy) failed or timed out; what was done before it stays done
  130  interrupted (Ctrl-C)
  141  the reader of the output went away (`lehttpd scan … | head -1`), as for a tool killed by SIGPIPE
"""
from __future__ import annotations

import enum


class ExitStatus(enum.IntEnum):
    SUCCESS = 0
    ERROR = 1
    USAGE = 2
    ACME = 3
    NETWORK = 4
    ENVIRONMENT = 5
    APACHE = 6
    PARTIAL = 7
    FINDINGS = 8
    HOOK = 9
    INTERRUPTED = 130
    BROKEN_PIPE = 141


class LehttpdError(Exception):
    """Base of every error shown to the user as `lehttpd: error: <message>`."""

    exit_status = ExitStatus.ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(LehttpdError):
    """The user's input is wrong: a flag, a name, a path, a file."""

    exit_status = ExitStatus.USAGE


class InvalidDomainError(UsageError):
    pass


class AcmeServerError(LehttpdError):
    """The ACME server answered, and the answer is a refusal or a failure."""

    exit_status = ExitStatus.ACME


class ValidationFailedError(AcmeServerError):
    pass


class NetworkError(LehttpdError):
    """The server could not be reached, timed out, or presented an untrusted certificate."""

    exit_status = ExitStatus.NETWORK


class EnvironmentProblem(LehttpdError):
    """Something on this machine is in the way: a busy port, a lock, permissions, a missing program."""

    exit_status = ExitStatus.ENVIRONMENT


class PortInUseError(EnvironmentProblem):
    pass


class LockHeldError(EnvironmentProblem):
    pass


class UntrustedFileError(EnvironmentProblem):
    """A file or folder that can name a command or a path is owned by another user or writable by others."""


class DiskFullError(EnvironmentProblem):
    """No space (or quota) left while writing: the previous state is kept."""


class StorageError(EnvironmentProblem):
    pass


class HookError(LehttpdError):
    """A user's hook command exited non-zero or ran past its time-out (not a bug of lehttpd: not exit 1)."""

    exit_status = ExitStatus.HOOK


class ApacheConfigError(LehttpdError):
    exit_status = ExitStatus.APACHE


class ScanError(LehttpdError):
    exit_status = ExitStatus.USAGE
