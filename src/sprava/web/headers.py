"""The security headers every server-rendered page of Sprava sends (the insider inbox,
the team's pages), each with its own Content-Security-Policy: nothing cached, no
referrer, no framing, no sniffing, no sharing with other origins, no device access."""

from __future__ import annotations


def page_headers(csp: str) -> dict[str, str]:
    """The headers of a page whose Content-Security-Policy is ``csp``."""
    return {
        "Content-Security-Policy": csp,
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    }
