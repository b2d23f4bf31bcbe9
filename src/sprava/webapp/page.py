"""Rendering a page: templates, the reader's language, formatting, and the headers.

The language is chosen by a ``lang`` query parameter (the language switch; it is then
remembered in a cookie), else that cookie, else ``Accept-Language``, else English.
Dates and numbers are formatted with Babel in that language; times are shown in UTC.

Every page carries :data:`HEADERS`: a Content-Security-Policy that allows no script at
all (a page rendered with ``script`` may run this server's own script files only),
styles and images from this server only, forms posting to this server only, and no
framing; no referrer; no caching.
"""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources
from typing import Any

from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal
from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment

from sprava.errors import SpravaError
from sprava.web import templates
from sprava.web.headers import page_headers
from sprava.web.i18n import NAMES, Catalogues, Language

LANG_COOKIE = "sprava_lang"
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
# The pages that run a script of this server: the upload page (progress and drag and
# drop), the dashboard and an item's page (live job progress). Nothing inline.
SCRIPT_CSP = ("default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; "
              "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
HEADERS = page_headers(CSP)

catalogues = Catalogues(package="sprava.webapp", domain="webapp")


def _(text: str) -> str:
    """Marks a message for translation where it is declared; translated when shown."""
    return text


def environment() -> Environment:
    return templates.environment("sprava.webapp")


def chosen_language(request: Request) -> str:
    asked = request.query_params.get("lang")
    if asked not in catalogues.languages:
        asked = request.cookies.get(LANG_COOKIE)
    return catalogues.negotiate(asked, request.headers.get("accept-language"))


def language(request: Request) -> Language:
    return catalogues.language(chosen_language(request))


class Formatter:
    """Dates, times and numbers in the reader's language (times in UTC)."""

    def __init__(self, lang: str) -> None:
        self.lang = lang

    def when(self, value: datetime | str | None) -> str:
        moment = _moment(value)
        if moment is None:
            return "" if value is None else str(value)
        return format_datetime(moment.astimezone(UTC), "medium", tzinfo=UTC,
                               locale=self.lang) + " UTC"

    def day(self, value: datetime | str | None) -> str:
        moment = _moment(value)
        if moment is None:
            return "" if value is None else str(value)
        return format_date(moment.astimezone(UTC).date(), "medium", locale=self.lang)

    def month(self, value: datetime) -> str:
        return format_date(value.astimezone(UTC).date(), "LLLL y", locale=self.lang)

    def number(self, value: float | int | None) -> str:
        return "" if value is None else format_decimal(value, locale=self.lang)


def _moment(value: datetime | str | None) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        try:
            found = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return found if found.tzinfo else found.replace(tzinfo=UTC)
    return None


# What a reader is told for the errors they can meet, in their language; other errors
# show the service's own (English) message.
PROBLEMS: dict[str, str] = {
    "login-failed": _("Wrong user name, password or code."),
    "too-many-attempts": _("Too many failed attempts. Please wait a few minutes and try "
                           "again."),
    "csrf-failed": _("This page was out of date, so nothing was changed. Please try again."),
    "missing-field": _("This is required."),
    "empty-field": _("This must not be empty."),
    "bad-time": _("Give a date and time."),
    "bad-period": _("The end is before the start."),
    "bad-coordinates": _("Give both latitude and longitude, or neither."),
    "precision-required": _("Coordinates need a precision in metres."),
    "wrong-password": _("The current password is wrong."),
    "passwords-differ": _("The two new passwords differ."),
    "weak-password": _("Choose a longer password that is not a common one."),
    "bad-totp-code": _("The code does not match. Check the phone's clock and try again."),
    "self-review": _("You wrote or edited this claim, so another person must review it."),
    "no-review-rights": _("Your account has no review rights."),
    "reason-required": _("A rejection needs a reason."),
    "illegal-transition": _("This change is not possible from the current state, which "
                            "may have changed in the meantime."),
    "note-required": _("Moving an incident back needs a note saying why."),
    "red-line-field": _("Sprava keeps no addresses, phone numbers, relatives or private "
                        "accounts of anyone."),
    "too-large": _("A file is over the size limit; it was not kept."),
    "bad-form": _("The form did not arrive whole; files not listed as stored were not "
                  "kept."),
    "empty-upload": _("Choose at least one file."),
    "bad-threshold": _("The threshold is a number from 0.01 to 0.99."),
    "not-redactable": _("Only photos and videos can be redacted."),
    "not-found": _("There is nothing here, or it is not for your role."),
    "bad-username": _("A user name has 2 to 64 characters: lower-case Latin letters, "
                      "digits, '.', '_' or '-'. Pick a pseudonym, not a real name."),
    "username-taken": _("There is already an account with this name."),
    "last-coordinator": _("This is the last active coordinator: make another account "
                          "coordinator first."),
    "forbidden": _("Your role may not do this."),
    "internal": _("Something went wrong on the server. It has been logged; please try "
                  "again later."),
}


# Words the pages show for stored values (roles, states, kinds), in the reader's language.
WORDS: dict[str, str] = {
    "coordinator": _("coordinator"), "investigator": _("investigator"),
    "uploader": _("uploader"), "viewer": _("viewer"),
    "reported": _("reported"), "corroborated": _("corroborated"), "verified": _("verified"),
    "draft": _("draft"), "pending_review": _("awaiting review"), "approved": _("approved"),
    "rejected": _("rejected"), "low": _("low"), "medium": _("medium"), "high": _("high"),
    "queued": _("queued"), "running": _("running"), "done": _("done"),
    "failed": _("failed"), "none": _("not analysed"), "image": _("image"),
    "video": _("video"), "audio": _("audio"), "other": _("other"),
    "pending": _("not yet under a checkpoint"),
    "analyse": _("analysis"), "redact": _("redaction"), "thumbnail": _("thumbnail"),
    "redaction": _("redacted copy"), "unit": _("unit"), "person": _("person"),
    "unknown": _("unknown"), "incident": _("incident"), "act": _("act"),
    "claim": _("claim"), "item": _("item"), "child": _("child"), "adult": _("adult"),
    "older": _("older"), "blur": _("blur"), "pixelate": _("pixelate"),
    "solid": _("solid box"), "badge_number": _("badge number"),
    "call_sign": _("call sign"), "vehicle_plate": _("vehicle plate"),
    "effect-none": _("not yet reviewed"),
    "effect-reported": _("reported, awaiting review"), "effect-reviewed": _("reviewed"),
    "unit_present_at_incident": _("unit present at the incident"),
    "unit_committed_act": _("unit committed the act"),
    "unit_subordinate_to_unit": _("unit subordinate to a unit"),
    "person_present_at_incident": _("person present at the incident"),
    "person_committed_act": _("person committed the act"),
    "person_member_of_unit": _("person member of a unit"),
    "person_commanded_unit": _("person commanded a unit"),
}


def problem_text(say: Any, problem: SpravaError) -> str:
    message = PROBLEMS.get(problem.code)
    if message is None and problem.code.endswith("-not-found"):
        message = PROBLEMS["not-found"]
    return str(say(message)) if message else problem.message


def render(request: Request, template: str, *, title: str, status: int = 200,
           problem: SpravaError | None = None, script: bool = False,
           **context: Any) -> HTMLResponse:
    """The page ``template`` in the reader's language, with the app's headers. Only a
    page rendered with ``script`` may run this server's scripts (and only talk to it)."""
    lang = language(request)
    say = lang.gettext
    visitor = getattr(request.state, "visitor", None)
    body = environment().get_template(template).render(
        _=say, word=lambda value: say(WORDS[str(value)]) if str(value) in WORDS
        else str(value), ngettext=lang.ngettext, lang=lang, title=say(title),
        fmt=Formatter(lang.code), languages=list(NAMES.items()), here=request.url.path,
        visitor=visitor, csrf=visitor.csrf_token if visitor is not None else "",
        query=request.query_params.get("q", ""),
        problem=problem_text(say, problem) if problem is not None else None,
        **context)
    headers = dict(HEADERS, **{"Content-Language": lang.code})
    if script:
        headers["Content-Security-Policy"] = SCRIPT_CSP
    response = HTMLResponse(body, status_code=status, headers=headers)
    remember_language(request, response)
    return response


def remember_language(request: Request, response: Response) -> None:
    """A language picked with the switch is kept for the next pages."""
    asked = request.query_params.get("lang")
    if asked in catalogues.languages and asked != request.cookies.get(LANG_COOKIE):
        response.set_cookie(LANG_COOKIE, asked, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https", path="/",
                            max_age=365 * 24 * 3600)


def static_file(name: str, media_type: str) -> Response:
    data = (resources.files("sprava.webapp") / "static" / name).read_bytes()
    return Response(data, media_type=media_type, headers=dict(
        HEADERS, **{"Cache-Control": "public, max-age=3600"}))
