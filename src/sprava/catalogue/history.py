"""The custody history of one catalogue entity: every change and every view, oldest first.

Read from the ``catalogue_change`` index; each entry names the ledger leaf that records
it, so that the history can be checked against the signed log
(:mod:`sprava.catalogue.verify`).
"""

from __future__ import annotations

from sprava.catalogue._record import Change, changes

__all__ = ["Change", "changes"]
