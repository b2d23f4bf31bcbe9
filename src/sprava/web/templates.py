"""The Jinja2 environment of each set of server-rendered pages (the insider inbox, the
team's pages, the public site): templates from the package, always escaped, loaded once
per process and shared by every request's thread."""

from __future__ import annotations

import threading

from jinja2 import Environment, PackageLoader, StrictUndefined, Undefined, select_autoescape

_lock = threading.Lock()
_made: dict[tuple[str, bool], Environment] = {}


def environment(package: str, *, strict: bool = False) -> Environment:
    """The environment of ``package``'s ``templates`` folder; ``strict`` makes a missing
    value an error instead of an empty string (the public site, built offline)."""
    with _lock:
        found = _made.get((package, strict))
        if found is None:
            found = _made[(package, strict)] = Environment(
                loader=PackageLoader(package, "templates"),
                autoescape=select_autoescape(default=True),
                undefined=StrictUndefined if strict else Undefined, auto_reload=False)
        return found
