"""The botbalance frontend as `pnpm build` (Vite) leaves it in `dist/`, made up per release tag.

Shaped so the publish step has real decisions to make:
- `assets/index-<hash>.js` and `assets/index-<hash>.css` change with every tag, so their names change too;
- `assets/vendor-<hash>.js` (the React bundle) is byte-identical for every tag, so "copy only what changed" has
  something to skip, and a rollback finds it already there;
- `index.html` keeps its name and points at the hashed files, so it must be copied last and never cached;
- `favicon.ico` and `robots.txt` are the same for every tag.

Hashes are the first 8 hex digits of the content's SHA-256 (Vite 4's `[hash]` shape), which is what
`shared.frontend.is_hashed_asset` recognises. Asset URLs are relative (`./assets/...`, Vite's `base: './'`), because
the local CDN serves the bucket under `/frontend/`, not at the origin's root.
"""
from __future__ import annotations

import hashlib
import struct

_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".woff2": "font/woff2",
    ".map": "application/json",
}

# Stands in for node_modules: identical bytes in every release, as a real vendor chunk is until a dependency moves.
_VENDOR_JS = (
    "/*! react v18.3.1 | MIT (abridged stand-in) */\n"
    "var e=Symbol.for(\"react.element\");function t(t,n,r){return{$$typeof:e,type:t,key:null,props:n||{}}}"
    "function n(e){return e}export{t as j,n as s};\n"
).encode()

_ROBOTS_TXT = b"User-agent: *\nAllow: /\n"


def _favicon() -> bytes:
    """A valid 1x1 transparent ICO (ICONDIR + one ICONDIRENTRY + a 32-bit BMP with its AND mask)."""
    pixels = b"\x00\x00\x00\x00"  # one BGRA pixel, fully transparent
    and_mask = b"\x00\x00\x00\x00"  # one row, padded to 32 bits
    bitmap = struct.pack("<IiiHHIIiiII", 40, 1, 2, 1, 32, 0, len(pixels) + len(and_mask), 0, 0, 0, 0)
    image = bitmap + pixels + and_mask
    header = struct.pack("<HHH", 0, 1, 1)
    entry = struct.pack("<BBBBHHII", 1, 1, 0, 0, 1, 32, len(image), 6 + 16)
    return header + entry + image


_FAVICON = _favicon()


def _content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:8]


def _app_js(tag: str, vendor_name: str) -> bytes:
    return (
        f'import{{j as e}}from"./{vendor_name}";'
        f'const r="{tag}";'
        'function App(){return e("main",{className:"app",children:["BotBalance ",r]})}'
        'document.getElementById("root").dataset.release=r;export{App as default};\n'
    ).encode()


def _app_css(tag: str) -> bytes:
    return (
        f':root{{--release:"{tag}";color-scheme:light dark}}'
        "body{margin:0;font-family:system-ui,sans-serif}.app{padding:2rem}\n"
    ).encode()


def _index_html(tag: str, js_name: str, css_name: str, vendor_name: str) -> bytes:
    return (
        "<!doctype html>\n"
        '<html lang="en">\n'
        "  <head>\n"
        '    <meta charset="UTF-8" />\n'
        '    <link rel="icon" href="./favicon.ico" />\n'
        '    <meta name="viewport" content="width=device-width, initial-scale=1.0" />\n'
        f'    <meta name="botbalance-release" content="{tag}" />\n'
        "    <title>BotBalance</title>\n"
        f'    <script type="module" crossorigin src="./assets/{js_name}"></script>\n'
        f'    <link rel="modulepreload" crossorigin href="./assets/{vendor_name}">\n'
        f'    <link rel="stylesheet" crossorigin href="./assets/{css_name}">\n'
        "  </head>\n"
        "  <body>\n"
        '    <div id="root"></div>\n'
        "  </body>\n"
        "</html>\n"
    ).encode()


def frontend_files(tag: str) -> dict[str, bytes]:
    """Path (relative to `dist/`) -> bytes of the frontend built for `tag`. Deterministic: same tag, same bytes."""
    vendor_name = f"vendor-{_content_hash(_VENDOR_JS)}.js"
    app_js = _app_js(tag, vendor_name)
    app_css = _app_css(tag)
    js_name = f"index-{_content_hash(app_js)}.js"
    css_name = f"index-{_content_hash(app_css)}.css"
    return {
        "index.html": _index_html(tag, js_name, css_name, vendor_name),
        f"assets/{js_name}": app_js,
        f"assets/{css_name}": app_css,
        f"assets/{vendor_name}": _VENDOR_JS,
        "favicon.ico": _FAVICON,
        "robots.txt": _ROBOTS_TXT,
    }


def content_type(path: str) -> str:
    """The Content-Type `gcloud storage` would set for `path` (by extension; octet-stream when unknown)."""
    dot = path.rfind(".")
    if dot == -1 or "/" in path[dot:]:
        return "application/octet-stream"
    return _CONTENT_TYPES.get(path[dot:].lower(), "application/octet-stream")
