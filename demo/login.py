"""Give the demo's coordinator a one-time password and say where to log in.

On the first run this creates the account ``coordinator`` (as ``sprava serve`` does on a
new instance); when the demo runs again on the same instance, it issues the account a new
one-time password instead, so that the printed credentials always work. Either way the
password must be changed at the first login, and the change is on the record.

Usage: python demo/login.py INSTANCE_FOLDER
"""

from __future__ import annotations

import sys
from pathlib import Path

from sprava.accounts import service
from sprava.accounts.service import FIRST_COORDINATOR
from sprava.instance import open_instance
from sprava.settings import load_settings


def credentials(home: Path) -> tuple[str, str, str]:
    """The address of the web pages, the user name and a one-time password."""
    instance = open_instance(load_settings(home))
    try:
        first = service.ensure_first_coordinator(instance)
        if first is not None:
            username, password = first
        else:
            found = [a for a in service.list_accounts(instance, limit=500).items
                     if a.username == FIRST_COORDINATOR]
            if not found:
                raise SystemExit(f"{home} has accounts but no {FIRST_COORDINATOR!r}: log in "
                                 "with an account of yours")
            username = found[0].username
            password = service.reset_password(instance, found[0].id, actor="local:demo")
        return f"http://{instance.settings.listen}/", username, password
    finally:
        instance.close()


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    address, username, password = credentials(Path(sys.argv[1]))
    print(f"\nOpen {address} in a browser and log in as {username} with the one-time "
          f"password {password}\n(you choose your own at once). The pages follow your "
          "browser's language (English, Belarusian, Russian, Ukrainian).\n"
          "The server starts now; Ctrl-C stops it.\n", flush=True)


if __name__ == "__main__":
    main()
