"""The JSON API served by ``sprava serve``: FastAPI over the same services as the CLI.

:mod:`~sprava.api.app` builds the application (error shape, security headers, body
limits); :mod:`~sprava.api.deps` resolves who is asking (session cookie + CSRF, or a
bearer token); the ``routes_*`` modules hold the endpoints. Every response is JSON with
``<``, ``>`` and ``&`` escaped, so that no stored text can become markup.
"""
