"""The documentation team's web application: server-rendered pages at ``/``.

Every core flow works without JavaScript (plain forms, POST then redirect then GET);
pages carry a strict Content-Security-Policy (no script, except this server's one on the
upload page), a CSRF token on every form, and nothing from any other site. The pages
call the same services as the JSON API, with the same role checks
(:mod:`sprava.accounts.roles`).

Modules: :mod:`~sprava.webapp.page` (templates, languages, headers, formatting),
:mod:`~sprava.webapp.visitor` (the session cookie, CSRF, forms, redirects),
:mod:`~sprava.webapp.account_pages` (login, password, second factor),
:mod:`~sprava.webapp.team_pages` (accounts, for coordinators),
:mod:`~sprava.webapp.dashboard`, :mod:`~sprava.webapp.evidence` with
:mod:`~sprava.webapp.evidence_query` (the grid, an item), :mod:`~sprava.webapp.upload`,
:mod:`~sprava.webapp.incident_pages` (list, page, forms),
:mod:`~sprava.webapp.incident_views` (timeline, plot of coordinates),
:mod:`~sprava.webapp.unit_pages` (units, persons), :mod:`~sprava.webapp.review`,
:mod:`~sprava.webapp.search_page`; :func:`~sprava.webapp.routes.router` joins them.
"""
