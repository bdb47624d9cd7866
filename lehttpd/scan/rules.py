"""Where URLs hide in HTML and what a browser does with each, as data (the A2 table of
../shared/reference/mixed-content-and-tls-policy.md, and the places it left out). html.py reads these tables;
markup.py builds its fast-path patterns from the same names, so that a new row cannot be skipped there."""
from __future__ import annotations

from lehttpd.scan.model import BLOCKABLE, FORM, INSECURE_BASE, LAZY, UPGRADABLE

# (attribute, class if insecure, how to read it) for the elements whose rules depend on nothing else. How to
# read it: "url", "list" (space- or srcset-separated), "document" (a URL that may be a data: document),
# "srcdoc" (a whole document; the src is then not loaded), "refresh", "base".
STATIC_RULES = {
    **{tag: (("src", BLOCKABLE, "url"),) for tag in ("script", "track")},
    "iframe": (("srcdoc", BLOCKABLE, "srcdoc"), ("src", BLOCKABLE, "document")),
    **{tag: (("src", BLOCKABLE, "document"),) for tag in ("frame", "embed")},
    "object": (("data", BLOCKABLE, "document"),),
    "applet": (("code", BLOCKABLE, "url"), ("codebase", BLOCKABLE, "url"), ("archive", BLOCKABLE, "url")),
    "button": (("formaction", FORM, "url"),),
    "form": (("action", FORM, "url"),),
    "base": (("href", INSECURE_BASE, "base"),),
    # HTML's rendering section maps `background` to background-image on all of these
    **{tag: (("background", UPGRADABLE, "url"),)
       for tag in ("body", "table", "thead", "tbody", "tfoot", "tr", "td", "th")},
    "image": (("href", UPGRADABLE, "url"), ("xlink:href", UPGRADABLE, "url")),  # SVG
}

# Inside <svg>: the elements that fetch through href (SVG 2 §5.6, Filter Effects §feImage) …
SVG_RULES = {
    "script": (("href", BLOCKABLE, "url"), ("xlink:href", BLOCKABLE, "url")),
    "feimage": (("href", UPGRADABLE, "url"), ("xlink:href", UPGRADABLE, "url")),
}
# … and the presentation attributes whose url() may name another document (paint servers, markers, clip
# paths, masks, filters). A reference to another document is treated as blockable, as the table does for <use>.
SVG_URL_ATTRS = ("filter", "clip-path", "mask", "fill", "stroke", "marker-start", "marker-mid", "marker-end")

# Lazy-loading attributes that scripts copy into src/srcset (lazysizes, lozad, jQuery lazyload, WordPress
# plugins…): the browser fetches them once the script runs. Their own class: shown, counted, fixed like src.
LAZY_URL_ATTRS = ("data-src", "data-lazy-src", "data-original", "data-bg", "data-background",
                  "data-background-image", "data-lazy", "data-echo", "data-poster", "data-hi-res-src",
                  "data-lazyload", "data-lazy-background")
LAZY_LIST_ATTRS = ("data-srcset", "data-lazy-srcset", "data-bgset", "data-original-set")
LAZY_RULES = {**{a: (LAZY, "url") for a in LAZY_URL_ATTRS}, **{a: (LAZY, "list") for a in LAZY_LIST_ATTRS}}

# Attributes read as a srcset (candidates separated by commas, URLs may hold commas).
SRCSET_ATTRS = frozenset(("srcset", "imagesrcset", *LAZY_LIST_ATTRS))

# The <link rel> tokens that fetch something (and preload, whose class depends on "as").
LINK_RELS = {"stylesheet": BLOCKABLE, "modulepreload": BLOCKABLE, "prefetch": BLOCKABLE,
             "prerender": BLOCKABLE, "manifest": BLOCKABLE, "icon": UPGRADABLE,
             "apple-touch-icon": UPGRADABLE, "apple-touch-icon-precomposed": UPGRADABLE,
             "mask-icon": UPGRADABLE}

# data: URL documents ("document" above, and a stylesheet <link>) are scanned as the page's own content, by
# the MIME type of the URL. An SVG in an <img> fetches nothing (images are in secure animated mode).
DATA_HTML_TYPES = ("text/html", "application/xhtml+xml", "image/svg+xml")
DATA_CSS_TYPES = ("text/css",)
