"""``sprava ledger``: the verifier key, checkpoints, leaves and proofs, for outside checkers."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Annotated, Any

import typer

from sprava.cli.app_types import JsonOpt
from sprava.cli.output import emit_json
from sprava.errors import NotFoundError


def build_ledger(open_current: Callable[[], Any]) -> typer.Typer:
    ledger = typer.Typer(help="The custody ledger: key, checkpoints, leaves and proofs.",
                         no_args_is_help=True)

    @ledger.command()
    def key(as_json: JsonOpt = False) -> None:
        """The note verifier key (name+keyid+base64key) that checks every checkpoint."""
        instance = open_current()
        try:
            verifier = instance.verifier
        finally:
            instance.close()
        if as_json:
            emit_json({"verifier_key": str(verifier), "name": verifier.name,
                       "key_id": verifier.key_id.hex(), "algorithm": "ed25519"})
        else:
            typer.echo(str(verifier))

    @ledger.command()
    def checkpoint(as_json: JsonOpt = False) -> None:
        """The latest signed checkpoint, exactly as signed (C2SP signed-note)."""
        from sprava.backends.db.engine import read_transaction
        from sprava.ledger.log import latest_checkpoint
        from sprava.ledger.note import Checkpoint, open_note

        instance = open_current()
        try:
            with read_transaction(instance.engine) as conn:
                stored = latest_checkpoint(conn)
        finally:
            instance.close()
        if stored is None:
            raise NotFoundError("the ledger is empty: nothing has been signed yet",
                                code="no-checkpoint", hint="ingest something first")
        if as_json:
            body = Checkpoint.parse(open_note(stored.note, instance.verifier))
            emit_json({"origin": body.origin, "size": body.size, "root": body.root.hex(),
                       "note": stored.note, "created_at": stored.created_at.isoformat()})
        else:
            typer.echo(stored.note, nl=False)

    @ledger.command()
    def export(
        start: Annotated[int, typer.Option(min=0, help="First leaf index.")] = 0,
        as_json: JsonOpt = False,
    ) -> None:
        """Every leaf: its index, a tab, and the exact leaf bytes (RFC 8785 JSON), one a line."""
        import sys

        from sprava.backends.db.engine import read_transaction
        from sprava.ledger.log import iter_leaves

        instance = open_current()
        try:
            with read_transaction(instance.engine) as conn:
                out = sys.stdout.buffer
                for leaf in iter_leaves(conn, start):
                    if as_json:
                        emit_json({"index": leaf.index, "leaf_hash": leaf.hash.hex(),
                                   "leaf_b64": base64.b64encode(leaf.data).decode()})
                    else:
                        out.write(b"%d\t%s\n" % (leaf.index, leaf.data))
                out.flush()
        finally:
            instance.close()

    def _tree_size(conn: Any, size: int | None) -> int:
        from sprava.ledger.log import latest_checkpoint

        if size is not None:
            return size
        stored = latest_checkpoint(conn)
        if stored is None:
            raise NotFoundError("the ledger is empty", code="no-checkpoint")
        return stored.size

    @ledger.command()
    def prove(
        index: Annotated[int, typer.Argument(min=0, help="The leaf index.")],
        size: Annotated[int | None, typer.Option(
            min=1, help="Tree size (default: the latest checkpoint).")] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Inclusion proof of one leaf (RFC 9162 §2.1.3), hashes bottom-up, in hex."""
        from sprava.backends.db.engine import read_transaction
        from sprava.ledger.log import checkpoint_at, get_leaf, inclusion_proof, root_at

        instance = open_current()
        try:
            with read_transaction(instance.engine) as conn:
                tree = _tree_size(conn, size)
                proof = inclusion_proof(conn, index, tree)
                leaf = get_leaf(conn, index)
                root = root_at(conn, tree)
                signed = checkpoint_at(conn, tree)
        finally:
            instance.close()
        record = {"index": index, "size": tree, "leaf_hash": leaf.hash.hex(),
                  "root": root.hex(), "proof": [h.hex() for h in proof],
                  "checkpoint": signed.note if signed else None}
        _print_proof(record, as_json)

    @ledger.command()
    def consistency(
        old: Annotated[int, typer.Argument(min=1, help="The older tree size.")],
        new: Annotated[int | None, typer.Argument(
            help="The newer tree size (default: the latest checkpoint).")] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Consistency proof between two tree sizes (RFC 9162 §2.1.4), in hex."""
        from sprava.backends.db.engine import read_transaction
        from sprava.ledger.log import consistency_proof, root_at

        instance = open_current()
        try:
            with read_transaction(instance.engine) as conn:
                tree = _tree_size(conn, new)
                proof = consistency_proof(conn, old, tree)
                record = {"old_size": old, "new_size": tree,
                          "old_root": root_at(conn, old).hex(),
                          "new_root": root_at(conn, tree).hex(),
                          "proof": [h.hex() for h in proof]}
        finally:
            instance.close()
        _print_proof(record, as_json)

    return ledger


def _print_proof(record: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(record)
        return
    for key, value in record.items():
        if key == "proof":
            typer.echo(f"proof ({len(value)} hashes):")
            for h in value:
                typer.echo(f"  {h}")
        elif key == "checkpoint":
            if value:
                typer.echo("signed checkpoint:")
                typer.echo(value, nl=False)
        else:
            typer.echo(f"{key}: {value}")
