"""`lehttpd scan`: flags in, one call per stage, results out through the Console."""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path
from typing import Iterator

from lehttpd.apache.commands import DEFAULT_WORK_DIR  # one work dir for every command that keeps backups
from lehttpd.console import Console
from lehttpd.errors import ExitStatus, NetworkError, ScanError, StorageError, UsageError
from lehttpd.scan.model import BLOCKABLE, CLASSES, INSECURE_BASE, NETWORK, PageResult, Problem, shown_path
from lehttpd.scan.pages import CSS_SUFFIXES, DEFAULT_SITE_URL, ScanOptions, scan_bytes, walk
from lehttpd.scan.report import JsonReport, SarifReport, ScanSummary, TextReport, hints_for
from lehttpd.scan.urls import host_of, https_of


def register(subparsers, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("scan", parents=[common], help="find (and fix) mixed content",
                              description="Find the http:// subresources that break the padlock once a site "
                                          "is on https, rank them by what browsers do, and optionally fix them.")
    p.add_argument("target", nargs="?", help="a folder of site files, one file, or a URL to fetch")
    p.add_argument("--site-url", help="the site's https URL (which host is the site, and the files' URLs)")
    p.add_argument("--vhost", metavar="NAME", help="scan the DocumentRoot of the Apache vhost serving NAME "
                   "(with a URL: that vhost's names are the same site for --crawl)")
    p.add_argument("--apache-ctl", metavar="PATH", help="with --vhost: apache2ctl/apachectl/httpd to ask (default: found)")
    p.add_argument("--format", choices=("text", "json", "sarif"), default="text", help="report format")
    p.add_argument("--fail-on", default=f"{BLOCKABLE},{INSECURE_BASE}", metavar="CLASSES",
                   help=f"classes that make the exit code 8 (comma-separated, from: {', '.join(CLASSES)}, none)")
    p.add_argument("--jobs", type=int, default=0, help="worker processes for a folder (default: one per core)")
    p.add_argument("--max-page-size", type=float, default=10, metavar="MB", help="skip larger pages (10)")
    crawl_group = p.add_argument_group("live site")
    crawl_group.add_argument("--crawl", action="store_true", help="follow same-site links from the URL")
    crawl_group.add_argument("--max-pages", type=int, default=200, help="stop after this many pages")
    crawl_group.add_argument("--max-depth", type=int, default=3, help="links followed from the start URL, with --crawl")
    crawl_group.add_argument("--concurrency", type=int, default=2, help="requests in flight at once (2)")
    crawl_group.add_argument("--timeout", type=float, default=10, help="seconds per request (10)")
    crawl_group.add_argument("--ca-bundle", help="trust this CA bundle (TLS verification is never disabled)")
    fix_group = p.add_argument_group("fixing")
    fix_group.add_argument("--fix", action="store_true",
                           help="rewrite the findings in the files (originals kept under --work-dir)")
    fix_group.add_argument("--dry-run", action="store_true", help="with --fix: show the unified diff only")
    fix_group.add_argument("--probe", action="store_true",
                           help="with --fix: upgrade third-party URLs whose host answers over https")
    fix_group.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR, metavar="DIR",
                           help=f"where --fix keeps the originals, one folder per run (default {DEFAULT_WORK_DIR})")
    fix_group.add_argument("--undo", nargs="?", const="", metavar="RUN",
                           help="put back the files of a --fix run (without RUN: list the runs)")
    p.set_defaults(handler=run_scan)


def _validate(args: argparse.Namespace) -> tuple[str, str, bool]:
    """(target, site URL, target is a URL) or a UsageError naming the bad flag."""
    args.extra_names, served = (), []
    if args.vhost:
        if args.target and not args.target.lower().startswith(("http://", "https://")):
            raise UsageError("give either a folder or --vhost, not both")
        vhost, served = _find_vhost(args.vhost, args.apache_ctl, need_root=not args.target)
        if args.target:  # a live site: the vhost's other names are the same site for --crawl
            args.extra_names = tuple(vhost.names)
        else:
            args.target, args.site_url = vhost.document_root, args.site_url or f"https://{args.vhost}/"
    elif args.apache_ctl:
        raise UsageError("--apache-ctl goes with --vhost")
    if not args.target:
        raise UsageError("scan needs a folder, a file or a URL (or --vhost NAME)")
    is_url = args.target.lower().startswith(("http://", "https://"))
    if is_url and (args.fix or args.dry_run):
        raise UsageError("--fix rewrites files: give the site's folder, not its URL")
    if (args.dry_run or args.probe) and not args.fix:
        raise UsageError("--dry-run and --probe go with --fix")
    if not is_url and not os.path.exists(args.target):
        raise ScanError(f"{args.target}: no such file or folder")
    if args.fix and not args.dry_run:  # the scanned folder, and with --vhost every DocumentRoot Apache serves
        for root in (args.target if os.path.isdir(args.target) else os.path.dirname(os.path.abspath(args.target)),
                     *served):
            _check_work_dir(args.work_dir, root)
    if args.crawl and not is_url:
        raise UsageError("--crawl needs a URL (https://…)")
    for flag in ("max_pages", "max_depth", "concurrency", "jobs"):
        if getattr(args, flag) < 0 or (flag in ("max_pages", "concurrency") and getattr(args, flag) == 0):
            raise UsageError(f"--{flag.replace('_', '-')} must be positive")
    site = args.site_url or (args.target if is_url else DEFAULT_SITE_URL)
    if not host_of(site) or not site.lower().startswith(("http://", "https://")):
        raise UsageError(f"--site-url {site!r} is not an http(s) URL with a host")
    site = https_of(site)  # pages are judged as served over https
    return args.target, site if site.endswith("/") else site + "/", is_url


def _check_work_dir(work_dir: Path, root: str) -> None:
    """Backups hold page sources (a PHP page's password): never inside a folder being served."""
    work, served = os.path.realpath(work_dir), os.path.realpath(root)
    if work == served or work.startswith(served.rstrip(os.sep) + os.sep):
        raise UsageError(f"--work-dir {shown_path(str(work_dir))} is inside {shown_path(root)}, a served folder: "
                         "the backups would be served; choose a folder outside every document root")


def _find_vhost(name: str, apache_ctl: str | None, need_root: bool) -> tuple[object, list[str]]:
    """The vhost serving name, and the DocumentRoot of every vhost (where backups must never go)."""
    from lehttpd.apache.discover import discover  # only --vhost needs Apache
    from lehttpd.apache.vhosts import read_vhosts

    vhosts, _, _ = read_vhosts(discover(apache_ctl))
    roots = [str(v.document_root) for v in vhosts if v.document_root]
    for vhost in vhosts:
        if vhost.serves(name) and (vhost.document_root or not need_root):
            return vhost, roots
    raise UsageError(f"no Apache vhost {'with a DocumentRoot ' if need_root else ''}serves {name}")


def _fail_on(text: str) -> tuple[str, ...]:
    classes = tuple(c.strip() for c in text.split(",") if c.strip() and c.strip() != "none")
    unknown = [c for c in classes if c not in CLASSES]
    if unknown:
        raise UsageError(f"--fail-on: unknown class {unknown[0]!r} (from: {', '.join(CLASSES)})")
    return classes


def _results(args: argparse.Namespace, target: str, site: str, is_url: bool
             ) -> tuple[Iterator[PageResult], int]:
    """The pages to report, and how many are expected (for the progress bar)."""
    max_bytes = int(args.max_page_size * 1024 * 1024)
    if is_url:
        from lehttpd.scan.crawl import CrawlOptions, crawl  # requests is imported only for live sites

        options = CrawlOptions(max_pages=args.max_pages, max_depth=args.max_depth if args.crawl else 0,
                               concurrency=args.concurrency, timeout=args.timeout, max_bytes=max_bytes,
                               follow=args.crawl, verify=args.ca_bundle or True, extra_names=args.extra_names,
                               site_url=args.site_url or target)
        return crawl(target, options), args.max_pages
    from lehttpd.scan.engine import scan_files  # multiprocessing is imported only for folder scans

    options = ScanOptions(site_url=site, max_bytes=max_bytes, jobs=args.jobs)
    if os.path.isfile(target):
        return scan_files([(os.path.abspath(target), os.path.basename(target))], options), 1
    # a first walk only counts, for the progress bar; the scan walks again as it goes, so that no list of
    # every path grows with the site
    return scan_files(walk(target), options), sum(1 for _ in walk(target))


def run_scan(args: argparse.Namespace, console: Console) -> int:
    if args.undo is not None:
        if args.target or args.fix or args.vhost:
            raise UsageError("--undo takes a run name only (no target, --vhost or --fix)")
        if not args.undo:
            return _list_runs(args, console)
        with _writers_lock(args.work_dir):
            return _run_undo(args, console)
    target, site, is_url = _validate(args)
    if not args.fix or args.dry_run:
        return _scan(args, console, target, site, is_url)
    with _writers_lock(args.work_dir):  # one --fix or --undo at a time on this work dir
        return _scan(args, console, target, site, is_url)


def _writers_lock(work_dir: Path):
    from lehttpd.fileio import file_lock, make_dir

    make_dir(Path(work_dir), 0o700)
    return file_lock(Path(work_dir) / "scan" / "fix.lock", 0, "scan --fix/--undo")


def _scan(args: argparse.Namespace, console: Console, target: str, site: str, is_url: bool) -> int:
    fail_on = _fail_on(args.fail_on)
    report = {"json": lambda: JsonReport(console, target, site), "sarif": lambda: SarifReport(console),
              "text": lambda: TextReport(console)}[args.format]()
    summary = ScanSummary()
    fixer = _Fixer(args, console, host_of(site), target) if args.fix else None
    report.start(target)
    start_failed = None  # why the start URL could not be fetched: nothing was scanned, exit 4
    try:
        results, expected = _results(args, target, site, is_url)
        for done, result in enumerate(results, 1):
            if is_url and done == 1:
                start_failed = next((p for p in result.problems if p.cause), None)
            if fixer is not None and result.findings:
                result = fixer.fix(result, summary)
            summary.add(result)
            report.page(result)
            console.progress(min(done, expected), expected, "pages")
    except BaseException:
        # what was done so far is reported, and the files already changed are named, before the error
        _finish(report, summary, fixer, args, console, interrupted=True)
        raise
    console.progress(expected, expected, "pages")
    _finish(report, summary, fixer, args, console)
    if start_failed is not None:
        error = NetworkError if start_failed.cause == NETWORK else UsageError
        raise error(f"{shown_path(target)}: {start_failed.reason}; nothing was scanned")
    return ExitStatus.FINDINGS if summary.failing(fail_on) else ExitStatus.SUCCESS


def _finish(report, summary: ScanSummary, fixer: _Fixer | None, args: argparse.Namespace, console: Console,
            interrupted: bool = False) -> None:
    if fixer is not None and fixer.run.folder is not None:
        summary.backup_run = fixer.run.name
        summary.changed = [shown_path(p) for p in fixer.run.changed()]
    hints = hints_for(summary, fixer is not None and not args.dry_run)
    if interrupted:
        hints.insert(0, "the scan stopped early: what is above is the part done")
    report.finish(summary, hints)
    if fixer is not None and summary.changed:  # in JSON and SARIF they are in the document; stderr too
        say = console.step if args.format == "text" else console.warn  # text: not under -q
        say(f"changed {len(summary.changed)} file(s), originals in {shown_path(str(fixer.run.folder))}; "
            f"undo with: lehttpd scan --undo {fixer.run.name}")
        for path in summary.changed:
            say(f"  changed: {path}")


def _list_runs(args: argparse.Namespace, console: Console) -> int:
    from lehttpd.scan.backup import list_runs

    runs = list_runs(args.work_dir)
    if not runs:
        console.result(f"no scan --fix run kept in {shown_path(str(args.work_dir))}")
    for run in runs:
        console.result(f"{run.name}  {run.files} file(s)  {run.root}")
    return ExitStatus.SUCCESS


def _run_undo(args: argparse.Namespace, console: Console) -> int:
    from lehttpd.scan.backup import undo

    outcome = undo(args.work_dir, args.undo)
    console.result(f"restored run {outcome.run}: {len(outcome.restored)} file(s)")
    for path in outcome.restored:
        console.result(f"  {path}")
    for path, why in outcome.left:
        console.warn(f"{path}: not restored: {why}")
    if outcome.left:
        raise PartialUndo(f"{len(outcome.left)} file(s) of run {outcome.run} not restored (see above)")
    return ExitStatus.SUCCESS


class PartialUndo(ScanError):
    exit_status = ExitStatus.PARTIAL


class _Fixer:
    """--fix for one page at a time: check where it may write, back up, rewrite, show the diff with --dry-run."""

    def __init__(self, args: argparse.Namespace, console: Console, site_host: str, root: str) -> None:
        self.console, self.site_host, self.dry_run = console, site_host, args.dry_run
        self.max_bytes = int(args.max_page_size * 1024 * 1024)
        from lehttpd.scan import fix  # requests is imported only when fixing
        from lehttpd.scan.backup import BackupRun
        from lehttpd.scan.guard import Guard

        self._fix_page = fix.fix_page
        self.probe = fix.Prober(timeout=args.timeout, verify=args.ca_bundle or True) if args.probe else None
        self.guard = Guard(root if os.path.isdir(root) else os.path.dirname(os.path.abspath(root)))
        self.run = BackupRun(args.work_dir, self.guard.root, " ".join(sys.argv[1:]) or "scan --fix")

    def fix(self, result: PageResult, summary: ScanSummary) -> PageResult:
        try:
            outcome = self._fix_page(result, self.site_host, self.probe, self.dry_run, self.max_bytes, self.guard,
                                     None if self.dry_run else self.run)
        except OSError as error:  # a full disk, a read-only folder: stop here, the report says what was done
            raise StorageError(f"{shown_path(result.page)}: cannot write: {error.strerror or error}; "
                               "stopped") from error
        if outcome.error:
            problem = Problem(result.page, f"not fixed: {outcome.error}", skipped=False)
            return dataclasses.replace(result, problems=result.problems + (problem,))
        if self.dry_run and outcome.diff:
            self.console.result(shown_path(outcome.diff.rstrip("\n")))
        if self.dry_run or not outcome.rewrites:
            return result
        summary.fixed += len(outcome.rewrites)
        self.console.detail(f"{shown_path(result.page)}: {len(outcome.rewrites)} rewritten, "
                            f"original in {outcome.backup}")
        # scan the new text again: fixing a <base> also fixes the relative URLs it made insecure
        again = scan_bytes(outcome.data or b"", result.url, result.page,
                           result.page.lower().endswith(CSS_SUFFIXES), path=result.path)
        return dataclasses.replace(again, problems=result.problems)
