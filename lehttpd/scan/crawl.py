"""A polite same-site crawler on requests: page and depth limits, robots.txt, sitemap, a small thread pool,
time-outs on every request and a deadline on every body, so that a slow or looping server cannot hold it.
Redirects are followed here, one hop at a time, each hop checked (same site, checked address: sitepolicy.py)
before it is fetched."""
from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterator
from urllib import robotparser
from urllib.parse import urldefrag, urljoin

import requests
import urllib3

from lehttpd import __version__
from lehttpd.scan.model import NETWORK, REFUSED, PageResult, Problem
from lehttpd.scan.pages import scan_bytes
from lehttpd.scan.source import MAX_PAGE_BYTES
from lehttpd.scan.sitepolicy import Origin, PinnedAdapter, Refused, Resolver, SitePolicy, Unreachable, resolve
from lehttpd.scan.urls import https_of

_LINK = re.compile(r"""<(a|area|i?frame|link)\b([^>]*)>""", re.I)
_ATTR = re.compile(r"""([a-zA-Z-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""")
_LOC = re.compile(r"<loc>\s*([^<\s]+)\s*</loc>", re.I)
_HTML_TYPES = ("text/html", "application/xhtml+xml")


@dataclass(frozen=True)
class CrawlOptions:
    max_pages: int = 200
    max_depth: int = 3
    concurrency: int = 2
    timeout: float = 10.0          # connect and read time-out of one request
    page_deadline: float = 30.0    # the whole body of one answer must arrive within this
    max_bytes: int = MAX_PAGE_BYTES
    max_redirects: int = 10
    follow: bool = True            # False: only the start page and its stylesheets
    user_agent: str = f"lehttpd-scan/{__version__}"
    verify: bool | str = True
    extra_names: tuple[str, ...] = ()  # other names of the same site (the vhost's ServerName/ServerAlias)
    site_url: str | None = None        # scheme, host and port of the site (default: the start URL's)


@dataclass(frozen=True)
class Fetched:
    url: str
    data: bytes = b""
    content_type: str = ""
    charset: str | None = None
    problem: str | None = None
    cause: str = ""          # NETWORK or REFUSED: the page was not fetched (the scan fails when it is the start URL)


def _cause(refused: Refused) -> str:
    return NETWORK if isinstance(refused, Unreachable) else REFUSED


_REDIRECTS = (301, 302, 303, 307, 308)


class Crawler:
    def __init__(self, start: str, options: CrawlOptions, resolver: Resolver = resolve) -> None:
        self.start, self.options = start, options
        # raises Refused when the site's own address may not be fetched
        self.policy = SitePolicy(options.site_url or start, options.extra_names, resolver)
        self.adapters: dict[str, PinnedAdapter] = {}
        self.lock = threading.Lock()  # one resolution and one adapter per name, whichever thread asks first
        self.headers = {"User-Agent": options.user_agent, "Accept-Encoding": "gzip, deflate"}
        self.robots = robotparser.RobotFileParser()
        self.robots.parse([])

    def same_site(self, url: str) -> bool:
        return self.policy.same_site(url)

    def _adapter(self, host: str) -> PinnedAdapter:
        with self.lock:
            if host not in self.adapters:
                self.adapters[host] = PinnedAdapter(self.policy.origin, host, self.policy.address(host),
                                                    self.options.concurrency)
            return self.adapters[host]

    def fetch(self, url: str, accept: tuple[str, ...] | None = None) -> Fetched:
        """One GET with time-outs, a size limit and a deadline for the body; redirects followed one hop at a
        time, each checked before it is fetched."""
        first = url
        try:
            for _ in range(self.options.max_redirects + 1):
                if not self.same_site(url):
                    where = "redirected off the site to" if url != first else "not on the site:"
                    return Fetched(first, problem=f"{where} {url}: not fetched{self._hint(url)}", cause=REFUSED)
                with self._get(url) as response:
                    location = response.headers.get("Location")
                    if response.status_code in _REDIRECTS and location:
                        url = urldefrag(urljoin(url, location.strip()))[0]
                        continue
                    if response.status_code >= 400:
                        return Fetched(first, problem=f"HTTP {response.status_code}")
                    content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
                    if accept and content_type not in accept:
                        return Fetched(url, content_type=content_type)
                    return self._body(url, response, content_type)
            return Fetched(first, problem=f"more than {self.options.max_redirects} redirects (a redirect loop?)")
        except Refused as refused:
            return Fetched(first, problem=f"not fetched: {refused}", cause=_cause(refused))
        except requests.Timeout:
            return Fetched(first, problem=f"no answer within {self.options.timeout:g} s", cause=NETWORK)
        except requests.exceptions.SSLError:
            return Fetched(first, problem="TLS certificate not trusted for this name (SSLError); --ca-bundle FILE "
                           "trusts a private CA", cause=NETWORK)
        except requests.RequestException as error:
            return Fetched(first, problem=f"fetch failed: {type(error).__name__}", cause=NETWORK)

    def _hint(self, url: str) -> str:
        other, site = Origin.of(url), self.policy.origin
        if other is not None and other.host in self.policy.names and other.scheme != site.scheme:
            return f" (another scheme is another site: start from {other.scheme}://{other.netloc()}/)"
        return ""

    def _get(self, url: str) -> requests.Response:
        request = requests.Request("GET", url).prepare()  # the path and query as requests would send them
        host = Origin.of(url).host
        return self._adapter(host).get(request.path_url, self.headers, self.options.timeout, self.options.verify)

    def _body(self, url: str, response: requests.Response, content_type: str) -> Fetched:
        # read1 returns what has arrived (one socket read, bounded by the read time-out), so the deadline is
        # checked at least that often even against a server trickling one byte at a time.
        deadline = time.monotonic() + self.options.page_deadline
        chunks, size = [], 0
        try:
            while chunk := response.raw.read1(65536, decode_content=True):
                chunks.append(chunk)
                size += len(chunk)
                if size > self.options.max_bytes:
                    return Fetched(url, problem=f"over the {self.options.max_bytes // 1024 // 1024} MB page limit")
                if time.monotonic() > deadline:
                    return Fetched(url, problem=f"too slow: body not complete after {self.options.page_deadline:g} s")
        except urllib3.exceptions.ReadTimeoutError:
            return Fetched(url, problem=f"no answer within {self.options.timeout:g} s")
        except urllib3.exceptions.HTTPError as error:
            return Fetched(url, problem=f"body cut short: {type(error).__name__}")
        return Fetched(url, b"".join(chunks), content_type, response.encoding if "charset=" in
                       response.headers.get("Content-Type", "").lower() else None)

    def read_robots(self) -> list[str]:
        """Load robots.txt (absent or unreadable: everything allowed); return the sitemap URLs it names."""
        root = urljoin(self.start, "/")
        fetched = self.fetch(urljoin(root, "/robots.txt"))
        if fetched.problem is None and fetched.data:
            self.robots.parse(fetched.data.decode("utf-8", "replace").splitlines())
        return list(self.robots.site_maps() or []) or [urljoin(root, "/sitemap.xml")]

    def sitemap_urls(self, sitemaps: list[str]) -> list[str]:
        urls: list[str] = []
        for sitemap in sitemaps[:5]:
            if not self.same_site(sitemap):
                continue
            fetched = self.fetch(sitemap)
            if fetched.problem is None:
                text = fetched.data.decode("utf-8", "replace")
                urls += [u for u in _LOC.findall(text) if self.same_site(u)]
        return urls

    def allowed(self, url: str) -> bool:
        return self.robots.can_fetch(self.options.user_agent, url)


def links(data: bytes, base: str) -> tuple[list[str], list[str]]:
    """(pages, stylesheets) linked from a page: discovery only, the findings come from html.py."""
    text = data.decode("utf-8", "replace")
    pages, sheets = [], []
    for m in _LINK.finditer(text):
        attrs = {a.group(1).lower(): a.group(2) or a.group(3) or a.group(4) or "" for a in _ATTR.finditer(m.group(2))}
        tag = m.group(1).lower()
        target = attrs.get("src" if tag.endswith("frame") else "href")
        if not target:
            continue
        url = urldefrag(urljoin(base, target.strip()))[0]
        if tag == "link":
            if "stylesheet" in attrs.get("rel", "").lower().split():
                sheets.append(url)
        else:
            pages.append(url)
    return pages, sheets


def crawl(start: str, options: CrawlOptions, resolver: Resolver = resolve) -> Iterator[PageResult]:
    """Scan the site breadth first, at most max_pages pages, each page and stylesheet once."""
    try:
        crawler = Crawler(start, options, resolver)
    except Refused as refused:
        problem = Problem(start, f"not fetched: {refused}", cause=_cause(refused))
        yield PageResult(start, https_of(start), (), (problem,))
        return
    seen: set[str] = set()
    level = [urldefrag(start)[0]]
    if options.follow:
        level += crawler.sitemap_urls(crawler.read_robots())
    else:
        crawler.read_robots()
    pages = 0
    with ThreadPoolExecutor(max_workers=max(1, options.concurrency)) as pool:
        for depth in range(options.max_depth + 1):
            batch = _next_batch(crawler, level, seen, options.max_pages - pages)
            if not batch:
                return
            pages += len(batch)
            level = []
            for url, fetched in zip(batch, pool.map(lambda u: crawler.fetch(u, _HTML_TYPES + ("text/css",)), batch)):
                result, found, sheets = _scan_fetched(url, fetched)
                yield result
                if options.follow and depth < options.max_depth:
                    level += found
                for sheet in _next_batch(crawler, sheets, seen, 50):
                    yield _scan_fetched(sheet, crawler.fetch(sheet, ("text/css",)), css=True)[0]


def _next_batch(crawler: Crawler, urls: list[str], seen: set[str], room: int) -> list[str]:
    batch = []
    for url in urls:
        if len(batch) >= room:
            break
        if url in seen or not crawler.same_site(url) or not crawler.allowed(url):
            continue
        seen.add(url)
        batch.append(url)
    return batch


def _scan_fetched(url: str, fetched: Fetched, css: bool = False) -> tuple[PageResult, list[str], list[str]]:
    if fetched.problem is not None:
        return PageResult(url, https_of(url), (), (Problem(url, fetched.problem, cause=fetched.cause),)), [], []
    if fetched.content_type not in _HTML_TYPES + ("text/css",):
        return PageResult(url, "", ()), [], []  # an image or a download behind a link: not a page
    is_css = css or fetched.content_type == "text/css"
    result = scan_bytes(fetched.data, https_of(fetched.url), url, is_css, fetched.charset)
    if is_css:
        return result, [], []
    found, sheets = links(fetched.data, fetched.url)
    return result, found, sheets
