"""Translations for server-rendered pages, from gettext catalogues in the package.

Catalogues are ``locales/<lang>/LC_MESSAGES/<domain>.po`` beside this module (or in any
package given). They are compiled in memory with Babel the first time a language is
asked for: nothing is built or downloaded at install time, and a ``.po`` file is the
only source. Message ids are the English text, so English needs no catalogue.

The language of a page is chosen by the page (a ``lang`` query parameter carried on its
links and forms: no cookie is needed), else from ``Accept-Language``, else English.
Tor Browser sends ``en-US`` whatever its user reads, so every page offers the others.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LANGUAGES = ("en", "be", "ru", "uk")
SOURCE = "en"
NAMES = {"en": "English", "be": "Беларуская", "ru": "Русский", "uk": "Українська"}


@dataclass(frozen=True)
class Language:
    code: str
    gettext: Callable[[str], str]
    ngettext: Callable[[str, str, int], str]

    @property
    def name(self) -> str:
        return NAMES.get(self.code, self.code)


class Catalogues:
    """The catalogues of one gettext domain in one package, compiled on first use."""

    def __init__(self, package: str = "sprava.web", domain: str = "sprava",
                 languages: tuple[str, ...] = LANGUAGES) -> None:
        self.package = package
        self.domain = domain
        self.languages = languages
        self._lock = threading.Lock()
        self._compiled: dict[str, NullTranslations] = {}

    def path(self, lang: str) -> resources.abc.Traversable:
        return (resources.files(self.package) / "locales" / lang / "LC_MESSAGES"
                / f"{self.domain}.po")

    def catalog(self, lang: str):  # type: ignore[no-untyped-def]
        """The parsed ``.po`` catalogue of ``lang`` (Babel's Catalog)."""
        with self.path(lang).open("rb") as handle:
            return read_po(handle, locale=lang, domain=self.domain)

    def translations(self, lang: str) -> NullTranslations:
        if lang == SOURCE or lang not in self.languages:
            return NullTranslations()
        with self._lock:
            found = self._compiled.get(lang)
            if found is None:
                buffer = io.BytesIO()
                write_mo(buffer, self.catalog(lang))
                buffer.seek(0)
                found = self._compiled[lang] = Translations(fp=buffer, domain=self.domain)
            return found

    def language(self, lang: str) -> Language:
        chosen = lang if lang in self.languages else SOURCE
        found = self.translations(chosen)
        return Language(chosen, found.gettext, found.ngettext)

    def negotiate(self, requested: str | None, accept_language: str | None) -> str:
        """The page's language: a known ``lang`` parameter, else the best match of
        ``Accept-Language`` (by quality), else English."""
        if requested in self.languages:
            return requested
        best, best_q = SOURCE, 0.0
        for item in (accept_language or "")[:500].split(",")[:20]:
            tag, _, params = item.strip().partition(";")
            base = tag.strip().lower().split("-")[0]
            q = 1.0
            if params.strip().startswith("q="):
                try:
                    q = float(params.strip()[2:])
                except ValueError:
                    q = 0.0
            if base in self.languages and q > best_q:
                best, best_q = base, q
        return best
