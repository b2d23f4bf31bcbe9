"""The catalogue: incidents, acts, units, persons, claims and their review, cases.

Services over :mod:`sprava.domain.catalogue`. Each write is one transaction holding the
row changes and their custody events (kind ``catalogue``); see docs/catalogue.md.

Modules: :mod:`~sprava.catalogue.vocabulary`, :mod:`~sprava.catalogue.incidents`,
:mod:`~sprava.catalogue.acts`, :mod:`~sprava.catalogue.units`,
:mod:`~sprava.catalogue.persons`, :mod:`~sprava.catalogue.claims`,
:mod:`~sprava.catalogue.cases`, :mod:`~sprava.catalogue.history`,
:mod:`~sprava.catalogue.verify`; input checking in
:mod:`~sprava.catalogue.schema`.
"""
