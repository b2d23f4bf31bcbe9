"""The pages of the site, in every UI language, from a :class:`~sprava.publish.public.Snapshot`.

Plain files only: HTML with no script, one stylesheet, SVG charts shown with ``<img>``.
Every link is relative, so the folder works from any host, any path, or opened straight
from disk; every page carries a Content-Security-Policy that lets it load nothing but its
own stylesheet and pictures, so even a hostile text in the catalogue could not make a
reader's browser fetch anything from elsewhere. Text from the catalogue is escaped
(Jinja2 autoescape).

Layout::

    index.html                 the languages
    style.css
    <lang>/index.html          figures and charts
    <lang>/charts/*.svg
    <lang>/incidents.html      verified incidents; <lang>/incidents/<id>.html each
    <lang>/units.html          units implicated;   <lang>/units/<id>.html each
    <lang>/methodology.html    how evidence is kept and checked; checkpoint and key
    data/public.json           everything the pages show (its SHA-256 is in the ledger)
    ledger/                    checkpoint, verifier key, proofs from earlier publications
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import partial
from importlib import resources
from typing import Any

from babel.dates import format_date
from babel.numbers import format_decimal
from jinja2 import Environment

from sprava.domain.catalogue import Confidence
from sprava.publish.chart import Series, Svg, bar_chart, column_chart
from sprava.publish.output import Staging
from sprava.publish.public import STATUSES, PublicIncident, PublicUnit, Snapshot
from sprava.web import templates
from sprava.web.i18n import LANGUAGES, NAMES, Catalogues, Language

CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; "
       "form-action 'none'")
# sprava.web.i18n is a plain gettext loader (Babel only, no web framework), shared with the
# inbox's pages; the site's own messages are in sprava/publish/locales.
CATALOGUES = Catalogues(package="sprava.publish", domain="publish")


def _(text: str) -> str:
    """Marks a message for translation where it is declared; translated when shown."""
    return text


SECTIONS = (("overview", _("Overview"), "index.html"),
            ("incidents", _("Verified incidents"), "incidents.html"),
            ("units", _("Units implicated"), "units.html"),
            ("methodology", _("How this is checked"), "methodology.html"))
STATUS_NAMES = {"reported": _("reported"), "corroborated": _("corroborated"),
                "verified": _("verified")}
CONFIDENCE_NAMES = {Confidence.LOW: _("low"), Confidence.MEDIUM: _("medium"),
                    Confidence.HIGH: _("high")}
REVIEWED, REPORTED = _("reviewed"), _("reported, not yet reviewed")
INTRO = _("Figures on documented violence against peaceful protest, the incidents our team "
          "has verified, and the units implicated in them, with how each can be checked.")
CHART_KEYS = ("incidents-by-month", "incidents-by-region", "incidents-by-violation-type")



def environment() -> Environment:
    return templates.environment("sprava.publish", strict=True)


def stylesheet() -> bytes:
    return (resources.files("sprava.publish") / "static" / "style.css").read_bytes()


def paragraphs(text: str) -> list[list[str]]:
    """Plain text as paragraphs (split at blank lines) of lines."""
    out: list[list[str]] = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        lines = [line.rstrip() for line in block.split("\n") if line.strip()]
        if lines:
            out.append(lines)
    return out


@dataclass(frozen=True)
class ChartView:
    key: str
    title: str
    caption: str
    width: int
    height: int
    head: Sequence[str]
    rows: Sequence[Sequence[Any]]


@dataclass(frozen=True)
class LedgerView:
    """What the methodology page says about the ledger (known once the publication is
    recorded)."""

    leaf: int
    size: int
    checkpoint: str
    verifier: str
    data_sha256: str
    earlier: Sequence[dict[str, str]]  # {"checkpoint": file name, "proof": file name}


class Site:
    """Renders one snapshot into a staging folder."""

    def __init__(self, snapshot: Snapshot, *, published_at: datetime,
                 languages: Sequence[str] = LANGUAGES) -> None:
        self.snapshot = snapshot
        self.published_at = published_at
        self.languages = tuple(languages)
        self.units = {u.id: u for u in snapshot.units}
        self.incidents = {x.id: x for x in snapshot.incidents}

    # --- helpers bound to a language ------------------------------------------------------

    def _context(self, lang: Language, *, here: str, section: str, title: str,
                 root: str) -> dict[str, Any]:
        code = lang.code
        say = lang.gettext

        def label(kind: str) -> str:
            return self.snapshot.label(kind, code)

        return {
            "lang": lang, "_": say, "ngettext": lang.ngettext, "csp": CSP, "root": root,
            "here": here, "section": section, "title": title,
            "languages": [(c, NAMES[c]) for c in self.languages], "sections": SECTIONS,
            "published": self.published_at.date(), "km": self._number(
                self.snapshot.precision_km, code),
            "day": partial(_day, locale=code), "number": partial(self._number, locale=code),
            "label": label,
            "violations": lambda codes: ", ".join(label(c) for c in codes),
            "confidence": lambda c: say(CONFIDENCE_NAMES[Confidence(c)]),
            "review": lambda reviewed: say(REVIEWED if reviewed else REPORTED),
            "unit_name": lambda unit_id: self.units[unit_id].name(code),
            "paragraphs": paragraphs,
        }

    @staticmethod
    def _number(value: float, locale: str) -> str:
        return format_decimal(value, format="#,##0.##", locale=locale)

    def _page(self, staging: Staging, lang: Language, path: str, template: str, *,
              section: str, title: str, **extra: Any) -> None:
        depth = path.count("/")
        context = self._context(lang, here=path, section=section, title=title,
                                root="../" * (depth + 1))
        context.update(extra)
        html = environment().get_template(template).render(**context)
        staging.write(f"{lang.code}/{path}", html.encode("utf-8"))

    # --- the pages ------------------------------------------------------------------------

    def render(self, staging: Staging) -> None:
        """Everything but the methodology pages (which need the recorded publication)."""
        staging.write("style.css", stylesheet())
        entries = []
        for code in self.languages:
            lang = CATALOGUES.language(code)
            entries.append({"code": code, "name": NAMES[code], "intro": lang.gettext(INTRO)})
            self._language(staging, lang)
        root = environment().get_template("root.html").render(csp=CSP, entries=entries)
        staging.write("index.html", root.encode("utf-8"))

    def _language(self, staging: Staging, lang: Language) -> None:
        say = lang.gettext
        charts = self._charts(staging, lang)
        self._page(staging, lang, "index.html", "overview.html", section="overview",
                   title=say("Documented incidents"), figures=self.snapshot.figures,
                   units=self.snapshot.units, charts=charts)
        self._page(staging, lang, "incidents.html", "incidents.html", section="incidents",
                   title=say("Verified incidents"), incidents=self.snapshot.incidents)
        for x in self.snapshot.incidents:
            self._page(staging, lang, f"incidents/{x.id}.html", "incident.html",
                       section="incidents", title=x.title, x=x)
        self._page(staging, lang, "units.html", "units.html", section="units",
                   title=say("Units implicated in verified incidents"),
                   units=self.snapshot.units)
        for u in self.snapshot.units:
            self._unit(staging, lang, u)

    def _unit(self, staging: Staging, lang: Language, u: PublicUnit) -> None:
        shown = u.name(lang.code)
        others = [(c, n) for c, n in sorted(u.names.items()) if n != shown]
        incidents: list[tuple[Any, PublicIncident]] = sorted(
            ((link, self.incidents[link.incident_id]) for link in u.links),
            key=lambda pair: (pair[1].start, pair[1].id), reverse=True)
        self._page(staging, lang, f"units/{u.id}.html", "unit.html", section="units",
                   title=shown, u=u, other_names=others, incidents=incidents)

    def _charts(self, staging: Staging, lang: Language) -> list[ChartView]:
        say, code, f = lang.gettext, lang.code, self.snapshot.figures
        empty = say("No incident is documented yet.")
        views = []
        statuses = [say(STATUS_NAMES[s]) for s in STATUSES]
        title = say("Documented incidents by month")
        desc = say("Columns show how many documented incidents began in each month (UTC), "
                   "by their status today.")
        svg = column_chart(title, f.months, [Series(name, f.by_month[s])
                                             for name, s in zip(statuses, STATUSES,
                                                                strict=True)],
                           desc=desc, empty=empty)
        rows = [[_month(m, code), *(f.by_month[s][i] for s in STATUSES),
                 sum(f.by_month[s][i] for s in STATUSES)] for i, m in enumerate(f.months)]
        views.append(self._chart(staging, lang, CHART_KEYS[0], svg, title, desc,
                                 [say("Month"), *statuses, say("All")], rows))
        title = say("Documented incidents by region")
        desc = say("Bars show how many documented incidents took place in each region.")
        bars = [(region or say("not recorded"), n) for region, n in f.by_region]
        views.append(self._chart(staging, lang, CHART_KEYS[1],
                                 bar_chart(title, bars, desc=desc, empty=empty), title, desc,
                                 [say("Region"), say("Incidents")], bars))
        title = say("Documented incidents by violation type")
        desc = say("Bars show how many documented incidents involved each type of violation; "
                   "one incident may involve several.")
        bars = [(self.snapshot.label(c, code), n) for c, n in f.by_violation]
        views.append(self._chart(staging, lang, CHART_KEYS[2],
                                 bar_chart(title, bars, desc=desc, empty=empty), title, desc,
                                 [say("Violation type"), say("Incidents")], bars))
        return views

    def _chart(self, staging: Staging, lang: Language, key: str, svg: Svg, title: str,
               desc: str, head: Sequence[str], rows: Sequence[Sequence[Any]]) -> ChartView:
        staging.write(f"{lang.code}/charts/{key}.svg", svg.text.encode("utf-8"))
        return ChartView(key, title, desc, svg.width, svg.height, head, rows)

    def render_methodology(self, staging: Staging, ledger: LedgerView) -> None:
        for code in self.languages:
            lang = CATALOGUES.language(code)
            self._page(staging, lang, "methodology.html", "methodology.html",
                       section="methodology", title=lang.gettext("How this is checked"),
                       leaf=ledger.leaf, size=ledger.size, checkpoint=ledger.checkpoint,
                       verifier=ledger.verifier, data_sha256=ledger.data_sha256,
                       earlier=ledger.earlier)


def _day(value: date, locale: str) -> str:
    # Not Babel's "long" format: Russian and Belarusian end it with "г.", which clashes
    # with the full stop of a sentence.
    return format_date(value, format="d MMMM y", locale=locale)


def _month(month: str, locale: str) -> str:
    return format_date(date(int(month[:4]), int(month[5:7]), 1), format="LLLL y",
                       locale=locale)


