"""Accounts: who may log in, with which role, and how they prove it.

:mod:`~sprava.accounts.roles` says what each role may do; :mod:`~sprava.accounts.secrets`
hashes passwords (Argon2id) and checks TOTP codes; :mod:`~sprava.accounts.throttle`
pauses logins after repeated failures; :mod:`~sprava.accounts.service` creates and
changes accounts (each change a custody event); :mod:`~sprava.accounts.sessions`
logs in and resolves browser sessions and API tokens to a :class:`Principal`.
"""
