"""Case files: a case exported as a BagIt bag that anyone can verify offline.

:mod:`~sprava.casefile.export` writes the bag (what goes in is read by
:mod:`~sprava.casefile.selection`, the report for people is :mod:`~sprava.casefile.report`,
the bag's files are written by :mod:`~sprava.casefile.bag`);
:mod:`~sprava.casefile.sprava_verify` checks it with the standard library and
``cryptography`` only, and ships inside every bag. docs/casefiles.md describes the layout.

This module imports nothing, so that ``sprava-verify`` starts without loading Sprava.
"""
