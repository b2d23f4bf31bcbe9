"""The case file's report for people: HTML, and PDF when WeasyPrint can run here.

Everything stored is text someone typed (titles, narratives, names, reasons), so every
value goes through :func:`html.escape` before it reaches the page: a description holding
``<script>`` shows as text, never runs. The page loads nothing from outside the bag: its
style is inline and its pictures are the bag's own thumbnails.

Thumbnails are made only from *redacted* copies (faces obscured, metadata stripped); an
original is never shown, only named by its SHA-256. The report is a rendering for people:
what proves anything is the signed data in ``sprava/``, and the report's own SHA-256 is
in the signed contents, so it cannot be changed unseen either.
"""

from __future__ import annotations

import io
import logging
import tempfile
import warnings
from collections.abc import Iterable, Mapping
from html import escape
from pathlib import Path
from typing import Any

from sprava.casefile.selection import ItemInfo, Selection
from sprava.domain.catalogue import STATEMENTS, Claim
from sprava.domain.custody import rfc3339
from sprava.domain.digest import Digest
from sprava.store.blobs import BlobStore

THUMB_SIDE = 320
_MAX_THUMB_SOURCE = 64 << 20  # bytes: a redacted picture larger than this gets no thumbnail
_VERBS = {
    "unit_present_at_incident": "was present at", "unit_committed_act": "committed",
    "unit_subordinate_to_unit": "was subordinate to",
    "person_present_at_incident": "was present at", "person_committed_act": "committed",
    "person_member_of_unit": "was a member of", "person_commanded_unit": "commanded",
}
_STYLE = """
body { font-family: 'DejaVu Sans', sans-serif; font-size: 10.5pt; margin: 2em; color: #111; }
h1 { font-size: 18pt; } h2 { font-size: 14pt; border-bottom: 1px solid #999; margin-top: 2em; }
h3 { font-size: 12pt; margin-bottom: .2em; } .muted { color: #555; }
.narrative { white-space: pre-wrap; } .restricted { border: 2px solid #a00; padding: .5em; }
table { border-collapse: collapse; width: 100%; } td, th { border: 1px solid #ccc;
padding: 2px 4px; vertical-align: top; text-align: left; font-size: 9pt; }
code, .hash { font-family: 'DejaVu Sans Mono', monospace; font-size: 8pt; }
figure { display: inline-block; margin: .3em; text-align: center; } figure img { max-width: 240px; }
.box { background: #f3f3f3; padding: .5em 1em; }
"""


def _t(value: Any) -> str:
    """Stored text, escaped; '—' for nothing."""
    return "—" if value is None or value == "" else escape(str(value))


def make_thumbnails(blobs: BlobStore, items: Iterable[ItemInfo]) -> dict[str, bytes]:
    """JPEG thumbnails of redacted pictures, by the redacted copy's SHA-256.

    Pictures Pillow cannot read safely (too large, a decompression bomb, not a picture,
    Pillow not installed) get none: the report then names the item by its hash only.
    """
    try:
        from PIL import Image
    except ImportError:
        return {}
    out: dict[str, bytes] = {}
    for info in items:
        if info.derivation != "redaction" or not info.media_type.startswith("image/") \
                or info.size > _MAX_THUMB_SOURCE:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # DecompressionBombWarning: no thumbnail
                with blobs.open(Digest(info.sha256)) as f, Image.open(f) as picture:
                    picture.draft("RGB", (THUMB_SIDE, THUMB_SIDE))
                    small = picture.convert("RGB")
                    small.thumbnail((THUMB_SIDE, THUMB_SIDE))
                    buffer = io.BytesIO()
                    small.save(buffer, "JPEG", quality=80)
        except Exception:  # noqa: S112 - any unreadable picture just has no thumbnail
            continue
        out[info.sha256] = buffer.getvalue()
    return out


class _Page:
    def __init__(self, selection: Selection, thumbs: Mapping[str, str]) -> None:
        self.s = selection
        self.thumbs = thumbs  # item sha256 → path of its thumbnail, relative to the report
        self.units = {u.id: u for u in selection.units}
        self.persons = {p.id: p for p in selection.persons}
        self.incidents = {i.id: i for i in selection.incidents}
        self.acts = {a.id: a for a in selection.acts}
        self.redacted = {i.derived_from: i.sha256 for i in selection.items
                         if i.derivation == "redaction" and i.derived_from}

    def name(self, kind: str, ident: str | None) -> str:
        if ident is None:
            return "—"
        if kind == "unit" and ident in self.units:
            names = self.units[ident].names
            return _t(names.get("en") or next(iter(names.values()), ident))
        if kind == "person" and ident in self.persons:
            p = self.persons[ident]
            return _t(" ".join(x for x in (p.rank, p.name) if x))
        if kind == "incident" and ident in self.incidents:
            return _t(self.incidents[ident].title)
        if kind == "act" and ident in self.acts:
            a = self.acts[ident]
            return f"{_t(self.s.labels.get(a.type, a.type))} (act {_t(a.id[:8])})"
        return f"{_t(kind)} {_t(ident[:8])}"

    def evidence(self, digests: Iterable[str]) -> str:
        parts = []
        for sha in digests:
            shown = self.redacted.get(sha, sha)
            thumb = self.thumbs.get(shown)
            label = f'<span class="hash">sha256:{_t(sha)}</span>'
            if thumb:
                parts.append(f'<figure><img src="{escape(thumb)}" alt="redacted copy">'
                             f"<figcaption>{label}<br>redacted copy</figcaption></figure>")
            else:
                parts.append(f"<div>{label}</div>")
        return "".join(parts) or "<p class='muted'>no items</p>"

    def claim(self, c: Claim) -> str:
        statement = STATEMENTS[c.statement]
        dates = f" from {_t(c.valid_from)} to {_t(c.valid_to)}" if statement.dated else ""
        role = f" as {_t(c.role)}" if c.role else ""
        return (
            f"<h3>{self.name(str(c.subject_kind), c.subject_id)} {_VERBS[c.statement]} "
            f"{self.name(str(c.object_kind), c.object_id)}{role}{dates}</h3>"
            f"<p>Confidence: <b>{_t(c.confidence)}</b>. Status: {_t(c.status)} "
            f"(counts as: {_t(c.effect)}). Claim {_t(c.id)}.</p>"
            f"<p>Author: {_t(c.author)}. Reviewer: {_t(c.reviewer)}"
            f"{' on ' + _t(rfc3339(c.reviewed_at)) if c.reviewed_at else ''}. "
            f"Review reason: {_t(c.review_reason)}.</p>"
            f"<p class='narrative'>{_t(c.comment)}</p>"
            f"<p>Sources:</p>{self.evidence(c.sources)}{self.trail(c.id)}")

    def trail(self, ident: str) -> str:
        rows = "".join(f"<tr><td>{t.leaf_index}</td><td>{_t(rfc3339(t.at))}</td>"
                       f"<td>{_t(t.change)}</td><td>{_t(t.actor)}</td><td>{_t(t.note)}</td></tr>"
                       for t in self.s.trails.get(ident, []))
        return ("<details><summary class='muted'>custody record</summary><table><tr><th>leaf"
                "</th><th>time</th><th>change</th><th>by</th><th>note</th></tr>"
                f"{rows}</table></details>")

    def incident_section(self) -> str:
        out = []
        for inc in self.s.incidents:
            place = inc.place
            where = _t(place.name) + (f", {_t(place.admin_area)}" if place.admin_area else "")
            if place.lat is not None and place.lon is not None:
                where += (f" ({_t(place.lat)}, {_t(place.lon)}, within "
                          f"{_t(place.precision_m)} m)")
            violations = ", ".join(_t(self.s.labels.get(v, v)) for v in inc.violation_types)
            out.append(
                f"<h3>{_t(inc.title)}</h3><p>{_t(rfc3339(inc.start))} to "
                f"{_t(rfc3339(inc.end) if inc.end else None)}; {where}. Status: "
                f"<b>{_t(inc.status)}</b>. Violations: {violations or '—'}.</p>"
                f"<p class='narrative'>{_t(inc.description)}</p>")
            for a in (a for a in self.s.acts if a.incident_id == inc.id):
                v, p = a.victim, a.perpetrator
                victim = "—" if v is None else (
                    f"{_t(v.pseudonym)} (age {_t(v.age_band)}; consents: publish anonymised "
                    f"{_t(v.consent.publish_anonymised)}, share with prosecutors "
                    f"{_t(v.consent.share_with_prosecutors)}, share with international "
                    f"mechanisms {_t(v.consent.share_with_international_mechanisms)})")
                who = _t(p.description) if str(p.kind) == "unknown" else (
                    self.name(str(p.kind), p.unit_id or p.person_id)
                    + f" (claim {_t((p.claim_id or '')[:8])}, counts as {_t(p.effect)})")
                out.append(
                    f"<h4>Act: {_t(self.s.labels.get(a.type, a.type))}</h4>"
                    f"<p class='narrative'>{_t(a.description)}</p><p>Victim: {victim}. "
                    f"Perpetrator: {_t(p.kind)}: {who}.</p><p>Evidence:</p>"
                    f"{self.evidence(a.evidence)}")
            out.append(self.trail(inc.id))
        return "".join(out) or "<p class='muted'>no incidents</p>"

    def render(self, *, exported_at: str, actor: str, origin: str) -> str:
        s, case = self.s, self.s.case
        units = "".join(
            f"<h3>{self.name('unit', u.id)}</h3><p>Type: {_t(u.type)}. Parent: "
            f"{self.name('unit', u.parent_id)}. Area: {_t(u.area_of_operation)}.</p>"
            f"<p>Names: {', '.join(f'{_t(k)}: {_t(v)}' for k, v in u.names.items())}</p>"
            f"<p class='narrative'>{_t(u.notes)}</p>" for u in s.units)
        persons = "".join(
            f"<h3>{_t(p.name)}</h3><p>Rank: {_t(p.rank)}. Role: {_t(p.role)}. Identifiers "
            f"seen in evidence: {_identifiers(p.identifiers)}.</p>"
            f"<p class='narrative'>{_t(p.notes)}</p>" for p in s.persons)
        items = "".join(
            f"<tr><td class='hash'>{_t(i.sha256)}</td><td>{i.size}</td><td>{_t(i.media_type)}"
            f"</td><td>{_derived(i)}</td></tr>" for i in s.items)
        events = "".join(
            f"<tr><td>{index}</td><td class='hash'>{s.leaf_hashes[index].hex()}</td></tr>"
            for index in s.events if index in s.leaf_hashes)
        return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Case file: {_t(case.title)}</title><style>{_STYLE}</style></head><body>
<h1>Case file: {_t(case.title)}</h1>
<p>Prepared for <b>{_t(case.recipient)}</b>. Exported {_t(exported_at)} by {_t(actor)} from
the evidence log <code>{_t(origin)}</code>. Case {_t(case.id)}.</p>
<p class="narrative">{_t(case.description)}</p>
<div class="box"><p>How to check this case file: run
<code>python3 tools/sprava_verify.py CASEFILE</code> (Python 3.11 and the
<code>cryptography</code> package; no network). It checks every file against its SHA-256,
every custody event against the signed checkpoint in <code>sprava/checkpoint.txt</code>,
and this report against the signed list of contents. Check the key it prints against the
one the team gave you by another channel. <code>tools/README.txt</code> says more.</p></div>
<p>{len(s.incidents)} incident(s), {len(s.acts)} act(s), {len(s.claims)} claim(s),
{len(s.units)} unit(s), {len(s.persons)} person(s), {len(s.items)} item(s),
{len(s.events) + 1} custody event(s) including this export.</p>
<h2>Incidents</h2>{self.incident_section()}
<h2>Claims</h2>{"".join(self.claim(c) for c in s.claims) or "<p class='muted'>no claims</p>"}
<h2>Units</h2>{units or "<p class='muted'>no units</p>"}
<h2>Persons</h2>
<div class="restricted"><p>Restricted. Persons named here are tied to this case by claims
that a second reviewer approved. This list leaves the team only in case files to a named
recipient, and this export is on the custody record.</p>{persons or "<p>none</p>"}</div>
<h2>Appendix A: items</h2><p>Files in <code>data/</code>, named by their SHA-256.</p>
<table><tr><th>SHA-256</th><th>bytes</th><th>type</th><th>derived</th></tr>{items}</table>
<h2>Appendix B: custody events</h2>
<p>Leaf index and RFC 6962 leaf hash of every event in <code>sprava/events.jsonl</code>
other than this export's own.</p>
<table><tr><th>leaf</th><th>leaf hash</th></tr>{events}</table>
{self.trail(case.id)}
</body></html>
"""


def _identifiers(found: Iterable[Any]) -> str:
    return ", ".join(f"{_t(i.kind)} {_t(i.value)}" for i in found) or "—"


def _derived(info: ItemInfo) -> str:
    if info.derived_from is None:
        return "original"
    return f"{_t(info.derivation)} of {_t(info.derived_from[:16])}…"


def render_html(selection: Selection, thumbs: Mapping[str, str], *, exported_at: str,
                actor: str, origin: str) -> str:
    """The report page; ``thumbs`` maps redacted items to thumbnail paths beside it."""
    return _Page(selection, thumbs).render(exported_at=exported_at, actor=actor,
                                           origin=origin)


def render_pdf(page: str, files: Mapping[str, bytes]) -> bytes | None:
    """The page as PDF with WeasyPrint, or None where WeasyPrint (or the Pango library it
    needs) is not installed. ``files`` are the page's pictures by relative path."""
    from PIL import ImageFile

    # Importing WeasyPrint sets Pillow's process-wide LOAD_TRUNCATED_IMAGES, which would
    # make every later image analysis in this process accept truncated files as whole.
    lenient = ImageFile.LOAD_TRUNCATED_IMAGES
    try:
        import weasyprint
    except (ImportError, OSError):
        return None
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = lenient
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="sprava-report-") as folder:
        for name, data in files.items():
            target = Path(folder) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        pdf: bytes = weasyprint.HTML(string=page, base_url=folder + "/").write_pdf()
    return pdf
