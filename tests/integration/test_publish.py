"""The public site on each real database: it names only what may be named, leaks nothing
restricted in any encoding, records its own publication, and replaces only its own folder."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from urllib.parse import quote, quote_plus, unquote

import pytest
from sqlalchemy import select

from conftest import new_instance
from publish_world import PUBLIC_SOURCES, World, build_world
from sprava.audit import verify_instance
from sprava.backends.db.engine import read_transaction
from sprava.backends.db.tables import ledger_leaf
from sprava.catalogue import claims, incidents, units
from sprava.catalogue.verify import verify_catalogue
from sprava.domain.custody import decode_leaf
from sprava.errors import ConflictError
from sprava.instance import Instance
from sprava.ledger.merkle import verify_consistency
from sprava.ledger.note import NoteVerifier, open_checkpoint
from sprava.publish import PUBLISH, publish_site
from sprava.publish.coarse import coarsen
from sprava.publish.output import MARKER

PRECISION_KM = 10.0
SITE_FILES = {".html", ".css", ".svg", ".json", ".txt"}
MEDIA_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"RIFF", b"\x1aE\xdf\xa3", b"ftyp",
               b"%PDF")


@pytest.fixture
def world(tmp_path: Path, database_url: str) -> Iterator[World]:
    instance = new_instance(tmp_path / "instance", database_url,
                            publish_public_sources=PUBLIC_SOURCES,
                            publish_precision_km=PRECISION_KM)
    try:
        yield build_world(instance, tmp_path)
    finally:
        instance.close()


def _files(site: Path) -> dict[str, bytes]:
    return {str(p.relative_to(site)): p.read_bytes() for p in sorted(site.rglob("*"))
            if p.is_file()}


def _encodings(text: str) -> set[bytes]:
    """``text`` as it could leak: plain, any case, HTML entities, URL-encoded, JSON
    escapes, UTF-16, a Cyrillic code page."""
    forms = {text, text.lower(), text.upper(), text.casefold(), html.escape(text),
             html.escape(text, quote=False),
             "".join(f"&#{ord(c)};" for c in text), "".join(f"&#x{ord(c):x};" for c in text),
             "".join(f"&#x{ord(c):X};" for c in text), quote(text), quote(text, safe=""),
             quote_plus(text), quote(text).lower(), json.dumps(text)[1:-1],
             json.dumps(text, ensure_ascii=False)[1:-1]}
    out = {f.encode("utf-8") for f in forms}
    out |= {text.encode("utf-16-le"), text.encode("utf-16-be")}
    with suppress(UnicodeEncodeError):
        out.add(text.encode("cp1251"))
    return {o for o in out if o}


_JSON_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def _decoded(data: bytes) -> str:
    """A file's text with HTML entities, URL escapes and JSON escapes undone, folded."""
    text = data.decode("utf-8", "replace")
    text = _JSON_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
    return html.unescape(unquote(html.unescape(text))).casefold()


def _digest_forms(sha: str) -> set[str]:
    raw = bytes.fromhex(sha)
    return {sha, sha.upper(), sha[:12], base64.b64encode(raw).decode(),
            base64.urlsafe_b64encode(raw).decode().rstrip("=")}


def _coordinate_forms(value: float, published: set[str]) -> set[str]:
    """The value written finer than the precision (0.01° ≈ 1.1 km < 10 km, and finer),
    rounded or cut, with a point or a comma; minus the coarse value as published, which
    may share its first digits by chance."""
    forms: set[str] = set()
    for decimals in range(2, 8):
        rounded = f"{value:.{decimals}f}"
        cut = f"{int(value * 10**decimals) / 10**decimals:.{decimals}f}"
        forms |= {rounded, cut, rounded.replace(".", ","), cut.replace(".", ",")}
    degrees = int(abs(value))
    minutes = int((abs(value) - degrees) * 60)
    forms |= {f"{degrees}°{minutes}'", f"{degrees}° {minutes}'", f"{degrees}°{minutes:02d}′"}
    return forms - published


def _scan(files: dict[str, bytes], needles: dict[str, set[str]]) -> list[str]:
    found = []
    decoded = {name: _decoded(data) for name, data in files.items()}
    for what, texts in needles.items():
        for text in texts:
            for name, data in files.items():
                if any(form in data for form in _encodings(text)) or \
                        text.casefold() in decoded[name]:
                    found.append(f"{what} {text!r} in {name}")
    return found


def _published(site: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((site / "data" / "public.json").read_bytes())


def _analyse(world: World) -> None:
    """Run the real media analysis, so that the photos' GPS is in the database too."""
    from sprava.media.pipeline import analyse

    for sha in world.originals:
        analyse(world.instance, sha)
    with read_transaction(world.instance.engine) as conn:
        from sprava.backends.db.tables import analysis

        results = [json.loads(r) for r in conn.execute(
            select(analysis.c.result).where(analysis.c.step == "metadata",
                                            analysis.c.status == "done")).scalars()]
    assert sum(1 for r in results if r["fields"].get("gps")) == 2


def test_nothing_restricted_leaks_in_any_encoding(world: World, tmp_path: Path) -> None:
    _analyse(world)
    site = tmp_path / "site"
    publish_site(world.instance, site, actor="local:publisher")
    files = _files(site)
    assert len(files) > 40

    published_coords = set()
    for x in _published(site)["incidents"]:
        published_coords |= {f"{x['place']['lat']}", f"{x['place']['lon']}"}
    needles: dict[str, set[str]] = {
        "restricted name": set(world.restricted),
        "file name": set(world.file_names),
        "digest of an original": {f for sha in world.originals for f in _digest_forms(sha)},
        "fine coordinate": {f for lat, lon in world.coordinates
                            for value in (lat, lon)
                            for f in _coordinate_forms(value, published_coords)},
        "unverified incident": {"March in Brest", "Detentions in Hrodna",
                                "Water cannon against a march", "Savetskaja",
                                "Okrestina street 36", "Pushkinskaya metro, exit 3"},
    }
    assert len(needles["fine coordinate"]) > 100
    assert _scan(files, needles) == []

    # ... and the scan is not blind: what may be shown is found by the same means.
    assert _scan(files, {"shown": {world.shown_commander, "Minsk OMON", "GUBOPiK",
                                   "Dispersal at Pushkinskaya", "53.86", "27.53"}}) != []
    for name in (world.shown_commander, "Minsk OMON", "Dispersal at Pushkinskaya"):
        assert any(name.encode() in data for data in files.values()), name

    # no media of any kind, and only plain site files
    for name, data in files.items():
        assert name == MARKER or Path(name).suffix in SITE_FILES, name
        assert not any(magic in data[:16] for magic in MEDIA_MAGIC), name
    # the hostile narrative is text, never markup: nothing could load from elsewhere
    for name, data in files.items():
        if name.endswith((".html", ".svg")):
            assert b"<script" not in data, name
            assert b"tracker.example/pixel.gif\"" not in data, name
            assert re.findall(rb'(?:src|href)="(https?:)', data) == [], name


def test_commanders_only_when_approved_and_sourced_to_public_documents(
        world: World, tmp_path: Path) -> None:
    site = tmp_path / "site"
    publish_site(world.instance, site, actor="local:publisher")
    doc = _published(site)
    by_unit = {u["names"]["en"]: u for u in doc["units"]}
    assert set(by_unit) == {"Minsk OMON", "GUBOPiK"}  # Brest OMON: no verified incident
    assert by_unit["Minsk OMON"]["commanders"] == [{
        "name": "Hryhoryi Zaslavets", "from": "2019-06", "to": "2021", "confidence": "high",
        "sources": ["Court records (public)", "Security Force Monitor"]}]
    # approved but from a volunteer; pending; rejected; partly from an insider
    assert by_unit["GUBOPiK"]["commanders"] == []
    page = (site / "en" / "units" / f"{by_unit['Minsk OMON']['id']}.html").read_text()
    assert "Hryhoryi Zaslavets" in page
    for name in ("Ihar Vialichka", "Pavel Marozau", "Siarhei Zhukouski", "Dzianis Lapatka",
                 "Yury Kastsiukevich"):
        assert not any(name.encode() in d for d in _files(site).values()), name

    # Approving the pending command (sourced to Security Force Monitor) publishes it next time.
    pending = claims.list_claims(world.instance, statement="person_commanded_unit",
                                 status="pending_review").items
    assert len(pending) == 1
    claims.approve_claim(world.instance, pending[0].id, actor="local:boris",
                         rights=claims.Reviewers(frozenset({"local:boris"})))
    publish_site(world.instance, site, actor="local:publisher")
    doc = _published(site)
    names = {c["name"] for u in doc["units"] for c in u["commanders"]}
    assert names == {"Hryhoryi Zaslavets", "Pavel Marozau"}


def test_no_public_sources_configured_names_no_commander(world: World, tmp_path: Path) -> None:
    from dataclasses import replace

    world.instance.settings = replace(world.instance.settings, publish_public_sources="")
    site = tmp_path / "site"
    done = publish_site(world.instance, site, actor="local:publisher")
    assert done.commanders == 0
    assert not any(b"Zaslavets" in d for d in _files(site).values())


def test_figures_and_verified_incidents(world: World, tmp_path: Path) -> None:
    site = tmp_path / "site"
    done = publish_site(world.instance, site, actor="local:publisher")
    assert (done.incidents, done.verified, done.units, done.commanders) == (4, 2, 2, 1)
    doc = _published(site)
    figures = doc["figures"]
    assert figures["by_status"] == {"reported": 1, "corroborated": 1, "verified": 2}
    assert [(m["month"], m["verified"], m["corroborated"], m["reported"])
            for m in figures["by_month"]] == [("2020-08", 2, 0, 0), ("2020-09", 0, 1, 0),
                                              ("2020-10", 0, 0, 0), ("2020-11", 0, 0, 1)]
    assert figures["by_region"] == [{"region": "Minsk", "incidents": 2},
                                    {"region": "Brest", "incidents": 1},
                                    {"region": "Hrodna", "incidents": 1}]
    assert {x["id"] for x in doc["incidents"]} == set(world.verified)
    first = next(x for x in doc["incidents"] if x["title"] == "Dispersal at Pushkinskaya")
    assert first["acts"] == [{"type": "arbitrary-detention", "count": 1},
                             {"type": "beating", "count": 1}]
    assert (first["start"], first["region"]) == ("2020-08-10", "Minsk")
    place = coarsen(53.909312, 27.495541, PRECISION_KM)
    assert first["place"] == {"lat": place.lat, "lon": place.lon, "cell_km": PRECISION_KM}
    omon = next(u for u in doc["units"] if u["names"]["en"] == "Minsk OMON")
    assert [(i["confidence"], i["review"]) for i in omon["incidents"]] == [
        ("medium", "reported"), ("high", "reviewed")]  # newest first
    gubopik = next(u for u in doc["units"] if u["names"]["en"] == "GUBOPiK")
    assert [(i["confidence"], i["review"]) for i in gubopik["incidents"]] == [
        ("low", "reported")]
    for lang in ("en", "be", "ru", "uk"):
        for incident_id in world.verified:
            assert (site / lang / "incidents" / f"{incident_id}.html").is_file()
        chart = (site / lang / "charts" / "incidents-by-month.svg").read_text()
        assert chart.count('data-value="') == 3  # Aug verified, Sep corroborated, Nov reported
    assert (site / "en" / "charts" / "incidents-by-month.svg").read_text().count(
        'data-total="2"') == 1


def test_the_publication_is_on_the_custody_record(world: World, tmp_path: Path) -> None:
    instance = world.instance
    site = tmp_path / "site"
    first = publish_site(instance, site, actor="local:publisher")
    data = (site / "data" / "public.json").read_bytes()
    assert first.data_sha256 == hashlib.sha256(data).hexdigest()
    with read_transaction(instance.engine) as conn:
        leaves = {i: decode_leaf(bytes(d)) for i, d in conn.execute(
            select(ledger_leaf.c.idx, ledger_leaf.c.data).where(ledger_leaf.c.idx >= 0))}
    event = leaves[first.leaf]
    assert (event["kind"], event["actor"], event["data_sha256"], event["data_size"]) == (
        PUBLISH, "local:publisher", first.data_sha256, len(data))
    assert event["counts"] == {"incidents": 4, "verified": 2, "units": 2, "commanders": 1}
    view = leaves[first.leaf - 1]
    assert (view["kind"], view["change"], view["entity"]) == ("catalogue", "view", "person")
    assert view["ids"] == event["persons"]
    assert len(event["persons"]) == 1
    assert first.tree_size == first.leaf + 1 == max(leaves) + 1

    key = NoteVerifier.parse((site / "ledger" / "verifier-key.txt").read_text().strip())
    assert str(key) == str(instance.verifier)
    checkpoint = open_checkpoint((site / "ledger" / "checkpoint.txt").read_text(), key)
    assert (checkpoint.size, checkpoint.root.hex()) == (first.tree_size, first.root)
    for lang in ("en", "be", "ru", "uk"):
        page = (site / lang / "methodology.html").read_text()
        assert str(instance.verifier) in page
        assert first.data_sha256 in page
        assert html.escape((site / "ledger" / "checkpoint.txt").read_text()) in page

    # A second publication carries the first one's checkpoint and a proof that the log
    # only grew since.
    incidents.update_incident(instance, world.verified[0], {"title": "Dispersal, updated"},
                              actor="local:anna")
    second = publish_site(instance, site, actor="local:publisher")
    old = open_checkpoint(
        (site / "ledger" / f"checkpoint-{first.tree_size}.txt").read_text(), key)
    proof = json.loads((site / "ledger" /
                        f"consistency-{first.tree_size}-{second.tree_size}.json").read_text())
    assert (proof["old_size"], proof["new_size"]) == (first.tree_size, second.tree_size)
    verify_consistency(first.tree_size, second.tree_size,
                       [bytes.fromhex(h) for h in proof["proof"]], old.root,
                       bytes.fromhex(second.root))
    assert "Dispersal, updated" in (site / "en" / "incidents.html").read_text()
    report = verify_instance(instance)
    assert report.ok, report.findings
    assert verify_catalogue(instance) == []


def test_a_change_while_the_site_is_built_is_caught(world: World) -> None:
    from sprava.catalogue import persons
    from sprava.ledger import log
    from sprava.publish.build import _changed_since

    instance = world.instance
    with read_transaction(instance.engine) as conn:
        head = log.head_size(conn)
    persons.list_persons(instance, actor="local:carol")  # a read changes nothing
    with read_transaction(instance.engine) as conn:
        assert not _changed_since(conn, head)
    incidents.update_incident(instance, world.verified[0], {"title": "Changed"},
                              actor="local:anna")
    with read_transaction(instance.engine) as conn:
        assert _changed_since(conn, head)


def _ledger_size(instance: Instance) -> int:
    with read_transaction(instance.engine) as conn:
        return len(conn.execute(select(ledger_leaf.c.idx)).all())


def test_a_folder_that_is_not_a_site_is_never_overwritten(world: World,
                                                          tmp_path: Path) -> None:
    target = tmp_path / "my-files"
    target.mkdir()
    (target / "thesis.odt").write_bytes(b"years of work")
    before = _ledger_size(world.instance)
    with pytest.raises(ConflictError, match="not a site Sprava published") as caught:
        publish_site(world.instance, target, actor="local:publisher")
    assert caught.value.code == "output-not-a-site"
    assert [p.name for p in target.iterdir()] == ["thesis.odt"]
    assert _ledger_size(world.instance) == before  # nothing recorded
    assert [p.name for p in tmp_path.iterdir() if ".sprava-" in p.name] == []


def test_republishing_replaces_the_site_whole(world: World, tmp_path: Path) -> None:
    site = tmp_path / "site"
    publish_site(world.instance, site, actor="local:publisher")
    gone = world.verified[1]
    assert (site / "en" / "incidents" / f"{gone}.html").exists()
    incidents.set_incident_status(world.instance, gone, "corroborated", actor="local:anna",
                                  note="a source was withdrawn")
    publish_site(world.instance, site, actor="local:publisher")
    assert not (site / "en" / "incidents" / f"{gone}.html").exists()
    doc = json.loads((site / "data" / "public.json").read_bytes())
    assert [u["names"]["en"] for u in doc["units"]] == ["Minsk OMON"]  # GUBOPiK went with it
    assert [p.name for p in tmp_path.iterdir() if ".sprava-" in p.name] == []


@pytest.mark.parametrize("where", ["narrative", "unit name", "region"])
def test_a_restricted_name_in_published_text_stops_the_publication(
        world: World, tmp_path: Path, where: str) -> None:
    instance = world.instance
    if where == "narrative":
        incidents.update_incident(instance, world.verified[0], {
            "description": "Among those detained was swallow 4471, a student."},
            actor="local:anna")
        expected = f"the narrative of incident {world.verified[0]} contains a victim's pseudonym"
    elif where == "unit name":
        unit_id = next(iter(world.unit_names))
        units.update_unit(instance, unit_id, {"names": {
            "en": "Minsk OMON (Uladzimir Nestsiarenka's company)"}}, actor="local:anna")
        expected = f"the name \\(en\\) of unit {unit_id} contains the name of a person"
    else:
        incidents.update_incident(instance, world.verified[1], {
            "place": {"name": "x", "admin_area": "Minsk, BN-550913"}}, actor="local:anna")
        expected = "contains an identifier of a person"
    site = tmp_path / "site"
    before = _ledger_size(instance)
    with pytest.raises(ConflictError, match=expected) as caught:
        publish_site(instance, site, actor="local:publisher")
    assert caught.value.code == "restricted-name-in-text"
    assert "Nestsiarenka" not in caught.value.message
    assert "4471" not in caught.value.message
    assert not site.exists()
    assert _ledger_size(instance) == before
