"""``sprava serve``: the JSON API on this instance, and the first coordinator account."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from sprava.cli.output import console
from sprava.errors import BadInputError


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) into its parts; raises BadInputError."""
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise BadInputError(f"listen: {value!r} is not HOST:PORT", code="bad-listen",
                            hint="e.g. 127.0.0.1:8740")
    return host, int(port)


def register(app: typer.Typer, settings: Callable[..., Any]) -> None:
    @app.command()
    def serve(
        listen: Annotated[str | None, typer.Option(
            help="HOST:PORT to listen on (default: the `listen` setting, 127.0.0.1:8740).")
        ] = None,
        inbox_only: Annotated[bool, typer.Option(
            "--inbox-only", help="Serve only the insider inbox's pages (/inbox/), e.g. to "
                                 "publish them alone as an onion service.")] = False,
    ) -> None:
        """Serve the team's web pages at / and the JSON API (OpenAPI at
        /api/v1/openapi.json).

        On the first start this creates the account `coordinator` and prints its one-time
        password, once: log in with it at / and change it when asked.
        """
        import uvicorn

        from sprava.accounts.service import ensure_first_coordinator
        from sprava.api.app import create_app
        from sprava.instance import open_instance

        current = settings(listen=listen)
        host, port = parse_listen(current.listen)
        instance = open_instance(current)
        err = console(stderr=True)
        try:
            if inbox_only:
                from sprava.inbox.pages import create_inbox_app

                err.print(f"Serving the inbox of {current.home} on http://{host}:{port}/inbox/ "
                          "(Ctrl-C stops)", markup=False, highlight=False)
                uvicorn.run(create_inbox_app(instance), host=host, port=port,
                            log_level="warning", access_log=False, server_header=False)
                return
            first = ensure_first_coordinator(instance)
            if first is not None:
                err.print(f"Created the first account: user name {first[0]}, one-time "
                          f"password {first[1]}\nIt is shown this once; change it at first "
                          "login.", markup=False, highlight=False)
            app_ = create_app(instance)
            err.print(f"Serving {current.home} on http://{host}:{port}/ (the team's pages; "
                      f"the API at /api/v1) (Ctrl-C stops)", markup=False, highlight=False)
            uvicorn.run(app_, host=host, port=port, log_level="warning", proxy_headers=True,
                        forwarded_allow_ips="127.0.0.1", server_header=False)
            app_.state.jobs.stop()
        finally:
            instance.close()
