"""The single-file verifier's parts, each against an independent reference: RFC 8785 against
the ``rfc8785`` package, RFC 9162 proofs against transparency-dev's published probes,
signed notes against Sprava's own signer; and what it may import."""

from __future__ import annotations

import ast
import base64
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from sprava.casefile import sprava_verify as sv
from sprava.ledger.note import Checkpoint, NoteSigner

SOURCE = Path(sv.__file__)
SAMPLES = Path(__file__).resolve().parents[3].parent / "shared" / "samples"
PROBES = SAMPLES / "transparency-dev-merkle" / "testdata"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12)


@settings(max_examples=150, deadline=None)
@given(json_values)
def test_canonical_json_is_rfc8785(value: Any) -> None:
    assert sv.canonical_json(value) == rfc8785.dumps(value)


@pytest.mark.parametrize(("number", "text"), [
    (0.0, "0"), (-0.0, "0"), (150.0, "150"), (53.9093, "53.9093"), (1e21, "1e+21"),
    (1e20, "100000000000000000000"), (1e-7, "1e-7"), (1e-6, "0.000001"),
    (123456789012345680000.0, "123456789012345680000"), (-1.5e-300, "-1.5e-300"),
    (5e-324, "5e-324"), (1.7976931348623157e308, "1.7976931348623157e+308"),
])
def test_numbers_are_written_as_ecmascript_does(number: float, text: str) -> None:
    assert sv.canonical_json(number).decode() == text


@pytest.mark.parametrize("bad", [math.nan, math.inf, 2**53, "\ud800", {1: 2}])
def test_values_without_a_canonical_form_are_refused(bad: Any) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - every such value raises the same way
        sv.canonical_json(bad)


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value) if value else b""


@pytest.mark.parametrize("probe", sorted(PROBES.rglob("*.json")), ids=lambda p: p.name)
def test_proofs_agree_with_the_transparency_dev_probes(probe: Path) -> None:
    case = json.loads(probe.read_text())
    proof = [_b64(p) for p in case["proof"] or []]
    try:
        if "leafIdx" in case:
            root = sv.inclusion_root(case["leafIdx"], case["treeSize"], _b64(case["leafHash"]),
                                     proof)
            if root != _b64(case["root"]):
                raise ValueError("another root")
        else:
            sv.check_consistency(case["size1"], case["size2"], proof, _b64(case["root1"]),
                                 _b64(case["root2"]))
        failed = False
    except ValueError:
        failed = True
    assert failed == case["wantErr"], case["desc"]


def test_probes_are_present() -> None:
    assert len(list(PROBES.rglob("*.json"))) >= 196


def test_a_checkpoint_signed_by_sprava_opens_with_the_key_sprava_prints() -> None:
    signer = NoteSigner.generate("example.org/log")
    key = sv.Key.parse(str(signer.verifier))
    assert str(key) == str(signer.verifier)
    note = signer.sign(Checkpoint("example.org/log", 7, b"\x07" * 32).to_text()).encode()
    assert sv.open_checkpoint(note, key) == (7, b"\x07" * 32)
    other = sv.Key.parse(str(NoteSigner.generate("example.org/log").verifier))
    with pytest.raises(ValueError, match="no signature by"):
        sv.open_checkpoint(note, other)
    forged = note.replace(b"\n7\n", b"\n8\n")
    with pytest.raises(ValueError, match="does not verify"):
        sv.open_checkpoint(forged, key)


WRONG_ID = "name+00000000+" + base64.b64encode(b"\x01" + b"k" * 32).decode()


@pytest.mark.parametrize("text", ["", "name", "name+zz+AAAA", "a b+00000000+AAAA", WRONG_ID])
def test_bad_keys_are_refused(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each names its own reason
        sv.Key.parse(text)


def test_the_verifier_imports_only_the_standard_library_and_cryptography() -> None:
    tree = ast.parse(SOURCE.read_text("utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "no relative imports"
            imported.add((node.module or "").split(".")[0])
    outside = imported - set(sys.stdlib_module_names) - {"__future__", "cryptography"}
    assert outside == set()
    assert "sprava" not in imported


def test_every_finding_code_is_documented() -> None:
    docs = (Path(__file__).resolve().parents[3] / "docs" / "casefiles.md").read_text("utf-8")
    table = docs.split("## Finding codes", 1)[1].split("\n## ", 1)[0]
    documented = re.findall(r"^\| `([a-z-]+)` \|", table, flags=re.M)
    assert documented == list(sv.ORDER)
