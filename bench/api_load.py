"""The JSON API under load: ``sprava serve`` with 100,000 incidents and 1,000,000 items,
50 concurrent connections driven by wrk (issue 4's load benchmark).

The instance is built once per size and schema and cached under ``/tmp`` (see
:func:`_cached_instance`): its catalogue and vault rows are inserted in bulk with
SQLAlchemy Core, so they have no custody events and ``sprava verify`` would not accept
them; this benchmark measures reads only. Each run copies the cached instance, creates
two accounts and an API token through the accounts service (those are real custody
events), starts ``sprava serve`` on a free loopback port and runs wrk against it, one
scenario after the other, with ``bench/api_load.lua`` rotating through a list of requests.

The peer is the same load on ``GET /api/v1/health`` of the same server: the cost of the
HTTP stack (uvicorn, FastAPI, the middleware) without login and without the database.

PostgreSQL: set ``SPRAVA_BENCH_DATABASE_URL=postgresql+psycopg://…`` to an empty
database; it is filled once and reused while its row counts match (the runs then share
one search index, so only the first run measures the initial indexing).
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import Ctx, Result, Row, child_env, loadavg, log, median

NAME = "api_load"
LUA = Path(__file__).with_name("api_load.lua")
CACHE = Path("/tmp/sprava-bench-api_load")
BUILD_VERSION = 2  # change when the generated data or index changes: a new cache key
CONNECTIONS, THREADS = 50, 2
WRK_TIMEOUT_S = 10
TARGET_P99_MS = 250.0
PREFIX = "/api/v1"
PASSWORD = "bench load quiet harbour lamp"  # noqa: S105 - a throwaway local account
DB_URL_ENV = "SPRAVA_BENCH_DATABASE_URL"

# --- the synthetic catalogue ---------------------------------------------------------------

_LANGS = ("be", "ru", "uk", "en")
_LANG_WEIGHTS = (35, 35, 10, 20)

# (be, ru, uk, en) name, (be, ru, uk, en) admin area, latitude, longitude, weight
_PLACES: tuple[tuple[tuple[str, ...], tuple[str, ...], float, float, int], ...] = (
    (("Мінск", "Минск", "Мінськ", "Minsk"), ("Мінск", "Минск", "Мінськ", "Minsk"),
     53.902, 27.561, 40),
    (("Гомель", "Гомель", "Гомель", "Homiel"),
     ("Гомельская вобласць", "Гомельская область", "Гомельська область", "Gomel Region"),
     52.441, 30.987, 9),
    (("Гродна", "Гродно", "Гродно", "Hrodna"),
     ("Гродзенская вобласць", "Гродненская область", "Гродненська область", "Grodno Region"),
     53.669, 23.813, 8),
    (("Брэст", "Брест", "Брест", "Brest"),
     ("Брэсцкая вобласць", "Брестская область", "Брестська область", "Brest Region"),
     52.097, 23.734, 8),
    (("Віцебск", "Витебск", "Вітебськ", "Vitebsk"),
     ("Віцебская вобласць", "Витебская область", "Вітебська область", "Vitebsk Region"),
     55.184, 30.202, 6),
    (("Магілёў", "Могилёв", "Могильов", "Mogilev"),
     ("Магілёўская вобласць", "Могилёвская область", "Могильовська область",
      "Mogilev Region"), 53.894, 30.331, 6),
    (("Бабруйск", "Бобруйск", "Бобруйськ", "Babruysk"),
     ("Магілёўская вобласць", "Могилёвская область", "Могильовська область",
      "Mogilev Region"), 53.138, 29.221, 3),
    (("Пінск", "Пинск", "Пінськ", "Pinsk"),
     ("Брэсцкая вобласць", "Брестская область", "Брестська область", "Brest Region"),
     52.115, 26.103, 2),
    (("Салігорск", "Солигорск", "Солігорськ", "Salihorsk"),
     ("Мінская вобласць", "Минская область", "Мінська область", "Minsk Region"),
     52.789, 27.540, 2),
    (("Кіеў", "Киев", "Київ", "Kyiv"), ("Кіеў", "Киев", "Київ", "Kyiv"), 50.450, 30.523, 3),
    (("Харкаў", "Харьков", "Харків", "Kharkiv"),
     ("Харкаўская вобласць", "Харьковская область", "Харківська область", "Kharkiv Oblast"),
     49.993, 36.231, 2),
    (("Масква", "Москва", "Москва", "Moscow"), ("Масква", "Москва", "Москва", "Moscow"),
     55.756, 37.617, 2),
)
_PLACE_WEIGHTS = tuple(p[4] for p in _PLACES)

_STREETS = {
    "be": ("праспекце Незалежнасці", "вуліцы Прытыцкага", "плошчы Перамогі", "Кастрычніцкай плошчы",
           "вуліцы Савецкай", "прыпынку «Універсам»"),
    "ru": ("проспекте Независимости", "улице Притыцкого", "площади Победы",
           "Октябрьской площади", "улице Советской", "остановке «Универсам»"),
    "uk": ("проспекті Незалежності", "вулиці Притицького", "площі Перемоги",
           "Жовтневій площі", "вулиці Радянській", "зупинці «Універсам»"),
    "en": ("Independence Avenue", "Prytyckaha Street", "Victory Square", "October Square",
           "Soviet Street", "the Universam stop"),
}

# title template per language, with the violation types it reports
_EVENTS: tuple[tuple[dict[str, str], tuple[str, ...]], ...] = (
    ({"be": "Затрыманне ўдзельнікаў мірнай акцыі на {street}, {place}",
      "ru": "Задержание участников мирной акции на {street}, {place}",
      "uk": "Затримання учасників мирної акції на {street}, {place}",
      "en": "Detention of peaceful protesters on {street}, {place}"},
     ("arbitrary-detention",)),
    ({"be": "Гвалтоўны разгон маршу, {place}", "ru": "Насильственный разгон марша, {place}",
      "uk": "Насильницький розгін маршу, {place}",
      "en": "Violent dispersal of a march, {place}"},
     ("violent-dispersal", "beating")),
    ({"be": "Збіццё затрыманых у РУУС, {place}", "ru": "Избиение задержанных в РУВД, {place}",
      "uk": "Побиття затриманих у відділку поліції, {place}",
      "en": "Beating of detainees at a district police station, {place}"},
     ("beating", "torture-ill-treatment")),
    ({"be": "Гумавыя кулі і святлашумавыя гранаты на {street}, {place}",
      "ru": "Резиновые пули и светошумовые гранаты на {street}, {place}",
      "uk": "Гумові кулі та світлошумові гранати на {street}, {place}",
      "en": "Rubber bullets and stun grenades on {street}, {place}"},
     ("use-of-weapons",)),
    ({"be": "Слезацечны газ супраць дэманстрантаў, {place}",
      "ru": "Слезоточивый газ против демонстрантов, {place}",
      "uk": "Сльозогінний газ проти демонстрантів, {place}",
      "en": "Tear gas against demonstrators, {place}"},
     ("use-of-chemical-irritants", "violent-dispersal")),
    ({"be": "Затрыманне журналістаў падчас рэпартажу, {place}",
      "ru": "Задержание журналистов во время репортажа, {place}",
      "uk": "Затримання журналістів під час репортажу, {place}",
      "en": "Journalists detained while reporting, {place}"},
     ("obstruction-of-journalists", "arbitrary-detention", "destruction-of-property")),
    ({"be": "Умовы ўтрымання ў ізалятары на Акрэсціна, {place}",
      "ru": "Условия содержания в изоляторе на Окрестина, {place}",
      "uk": "Умови утримання в ізоляторі на Окрестина, {place}",
      "en": "Conditions at the Akrestsina detention centre, {place}"},
     ("inhuman-detention-conditions", "denial-of-medical-care", "denial-of-legal-counsel")),
    ({"be": "Знікненне ўдзельніка пратэсту пасля затрымання, {place}",
      "ru": "Исчезновение участника протеста после задержания, {place}",
      "uk": "Зникнення учасника протесту після затримання, {place}",
      "en": "Protester missing after detention, {place}"},
     ("enforced-disappearance", "arbitrary-detention")),
    ({"be": "Пагрозы актывістам з боку супрацоўнікаў ГУБАЗіК, {place}",
      "ru": "Угрозы активистам со стороны сотрудников ГУБОПиК, {place}",
      "uk": "Погрози активістам з боку співробітників ГУБОЗіК, {place}",
      "en": "Threats against activists by GUBOPiK officers, {place}"},
     ("threats-intimidation",)),
)

# (be, ru, uk, en): surnames of witnesses and photographers
_SURNAMES = (
    ("Кавалёў", "Ковалёв", "Ковальов", "Kavaliou"),
    ("Бандарэнка", "Бондаренко", "Бондаренко", "Bandarenka"),
    ("Новік", "Новик", "Новік", "Novik"),
    ("Марозаў", "Морозов", "Морозов", "Marozau"),
    ("Жук", "Жук", "Жук", "Zhuk"),
    ("Лысенка", "Лысенко", "Лисенко", "Lysenka"),
    ("Шаўчэнка", "Шевченко", "Шевченко", "Shauchenka"),
    ("Кузняцоў", "Кузнецов", "Кузнєцов", "Kuzniatsou"),
    ("Каваленка", "Коваленко", "Коваленко", "Kavalenka"),
    ("Радзевіч", "Радевич", "Радевич", "Radzevich"),
)

_DESCRIPTIONS = {
    "be": "Паводле сведкі {surname}, каля {n} чалавек затрымалі супрацоўнікі АМАП у цывільным. "
          "Фота і відэа далучаныя.",
    "ru": "По словам свидетеля {surname}, около {n} человек задержали сотрудники ОМОН без "
          "опознавательных знаков. Фото и видео приложены.",
    "uk": "За словами свідка {surname}, близько {n} людей затримали співробітники поліції без "
          "розпізнавальних знаків. Фото та відео додано.",
    "en": "According to the witness {surname}, about {n} people were detained by officers "
          "in plain clothes. Photos and video attached.",
}

_STATUSES = ("reported", "corroborated", "verified")
_STATUS_WEIGHTS = (55, 30, 15)
_MEDIA = (("image/jpeg", ".jpg", 62), ("video/mp4", ".mp4", 18), ("image/png", ".png", 8),
          ("image/heic", ".heic", 5), ("video/quicktime", ".mov", 4),
          ("application/pdf", ".pdf", 3))
_START = datetime(2020, 1, 1, tzinfo=UTC)
_SPAN = int((datetime(2025, 1, 1, tzinfo=UTC) - _START).total_seconds())
_ACTORS = ("user:bench-investigator", "user:volunteer-12", "user:volunteer-31", None)


def _moment(rng: random.Random) -> datetime:
    """A time in 2020–2024, denser around August 2020 as the real archives are."""
    if rng.random() < 0.3:
        base = datetime(2020, 8, 9, tzinfo=UTC)
        return base + timedelta(seconds=rng.randrange(120 * 86400))
    return _START + timedelta(seconds=rng.randrange(_SPAN))


def _incident_rows(rng: random.Random, count: int) -> tuple[list[dict[str, Any]],
                                                             list[dict[str, Any]]]:
    incidents, violations = [], []
    for _ in range(count):
        lang = rng.choices(_LANGS, _LANG_WEIGHTS)[0]
        li = _LANGS.index(lang)
        names, areas, lat, lon, _w = rng.choices(_PLACES, _PLACE_WEIGHTS)[0]
        template, codes = rng.choice(_EVENTS)
        title = template[lang].format(place=names[li], street=rng.choice(_STREETS[lang]))
        description = _DESCRIPTIONS[lang].format(surname=rng.choice(_SURNAMES)[li],
                                                  n=rng.randrange(3, 300))
        start = _moment(rng)
        end = start + timedelta(minutes=rng.randrange(20, 600)) if rng.random() < 0.7 else None
        created = start + timedelta(days=rng.randrange(1, 60))
        ident = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        incidents.append({
            "id": ident, "salt": f"{rng.getrandbits(128):032x}", "title": title,
            "description": description, "start_at": start, "end_at": end,
            "place_name": names[li], "admin_area": areas[li],
            "lat": round(lat + rng.uniform(-0.08, 0.08), 5),
            "lon": round(lon + rng.uniform(-0.12, 0.12), 5),
            "precision_m": rng.choice((10.0, 50.0, 250.0, 1000.0, 5000.0)),
            "status": rng.choices(_STATUSES, _STATUS_WEIGHTS)[0],
            "created_at": created, "updated_at": created})
        chosen = set(rng.sample(codes, rng.randint(1, len(codes))))
        if rng.random() < 0.05:
            chosen.add("other")
        violations += [{"incident_id": ident, "code": c} for c in sorted(chosen)]
    return incidents, violations


def _cumulative(weights: Sequence[int]) -> list[float]:
    total, out = sum(weights), list[float]()
    for w in weights:
        out.append((out[-1] if out else 0.0) + w / total)
    return out


_LANG_CUM = _cumulative(_LANG_WEIGHTS)
_PLACE_CUM = _cumulative(_PLACE_WEIGHTS)
_MEDIA_CUM = _cumulative([m[2] for m in _MEDIA])


def _pick(rng: random.Random, cumulative: Sequence[float]) -> int:
    return min(bisect.bisect(cumulative, rng.random()), len(cumulative) - 1)


def _item_name(rng: random.Random, w: datetime, ext: str) -> str:
    """A file name as phones, messengers and volunteers write them."""
    day = f"{w.year}-{w.month:02d}-{w.day:02d}"
    clock = f"{w.hour:02d}{w.minute:02d}{w.second:02d}"
    kind = rng.random()
    if kind < 0.45:
        return f"{'VID' if ext in ('.mp4', '.mov') else 'IMG'}_{day.replace('-', '')}_{clock}{ext}"
    if kind < 0.62:
        return f"photo_{rng.randrange(1, 9999)}@{w.day:02d}-{w.month:02d}-{w.year}{ext}"
    li = _pick(rng, _LANG_CUM)
    if kind < 0.75:
        return f"{_PLACES[_pick(rng, _PLACE_CUM)][0][li]} {day} ({rng.randrange(1, 400)}){ext}"
    if kind < 0.85:
        return f"{_PLACES[_pick(rng, _PLACE_CUM)][0][3]}_{day}_{rng.randrange(1, 999):03d}{ext}"
    if kind < 0.93:
        return f"{_SURNAMES[rng.randrange(len(_SURNAMES))][li]}_{day}_{rng.randrange(500)}{ext}"
    return f"Screenshot_{day.replace('-', '')}-{clock}{ext}"


def _item_rows(rng: random.Random, first: int, count: int) -> tuple[list[dict[str, Any]],
                                                                     list[dict[str, Any]]]:
    """Items ``first`` … ``first + count``, sorted by SHA-256 so that the inserts walk the
    primary key's B-tree in order."""
    items, names = [], []
    for i in range(first, first + count):
        sha = hashlib.sha256(b"sprava-bench-item-%d" % i).hexdigest()
        media_type, ext, _w = _MEDIA[_pick(rng, _MEDIA_CUM)]
        when = _moment(rng)
        size = int((40_000 + rng.random() * 8e6) * (50 if ext == ".mp4" else 1))
        name = _item_name(rng, when, ext)
        received = when + timedelta(seconds=rng.randrange(3600, 30 * 86400))
        items.append({"sha256": sha, "size": size, "media_type": media_type,
                      "first_seen": received})
        names.append({"item_sha256": sha, "name_raw": name.encode(), "name": name,
                      "source_id": None, "leaf_index": 0, "received_at": received,
                      "actor": _ACTORS[i % len(_ACTORS)]})
    items.sort(key=lambda r: str(r["sha256"]))
    names.sort(key=lambda r: str(r["item_sha256"]))
    return items, names


# --- building and caching the instance -----------------------------------------------------

_BATCH = 50_000  # rows per executemany
_COMMIT = 250_000  # items per transaction


def _schema() -> str:
    """The schema's head revision and a digest of every migration script: a migration
    edited in place (before it is released) also makes a new cache entry."""
    from importlib import resources

    from sprava.backends.db.engine import head_revision

    digest = hashlib.sha256()
    versions = resources.files("sprava.backends.db") / "migrations" / "versions"
    for script in sorted((p for p in versions.iterdir() if p.name.endswith(".py")),
                         key=lambda p: p.name):
        digest.update(script.name.encode() + b"\0" + script.read_bytes())
    return f"{head_revision()}-{digest.hexdigest()[:10]}"


def _cache_key(incidents: int, items: int, database_url: str | None) -> str:
    where = "sqlite" if database_url is None else (
        "pg-" + hashlib.sha256(database_url.encode()).hexdigest()[:12])
    return f"{where}-{incidents}i-{items}n-v{BUILD_VERSION}-{_schema()}"


def _settings(home: Path, database_url: str | None) -> Any:
    from sprava.settings import load_settings

    overrides = {"database_url": database_url} if database_url else None
    return load_settings(home=home, overrides=overrides, environ={})


def _counts(engine: Any) -> tuple[int, int]:
    from sqlalchemy import func, select

    from sprava.backends.db.catalogue_tables import incident
    from sprava.backends.db.tables import item

    with engine.connect() as conn:
        return (int(conn.execute(select(func.count()).select_from(incident)).scalar_one()),
                int(conn.execute(select(func.count()).select_from(item)).scalar_one()))


def _bulk_insert(conn: Any, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    """``INSERT`` many rows. On SQLite the Core statement is compiled once and each value
    goes through its column type's own bind processor (so times are stored exactly as
    Sprava stores them), then straight to the driver's ``executemany``: a third of the
    time of a plain Core ``executemany``, which rebuilds the parameters row by row."""
    from sqlalchemy import insert

    if not rows:
        return
    if conn.dialect.name != "sqlite":
        for start in range(0, len(rows), _BATCH):
            conn.execute(insert(table), rows[start:start + _BATCH])
        return
    compiled = insert(table).compile(dialect=conn.dialect, column_keys=list(rows[0]))
    names = compiled.positiontup or []
    procs = [table.c[n].type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
             for n in names]
    pairs = list(zip(names, procs, strict=True))
    for start in range(0, len(rows), _BATCH):
        params = [tuple(p(r[n]) if p else r[n] for n, p in pairs)
                  for r in rows[start:start + _BATCH]]
        conn.exec_driver_sql(compiled.string, params)


def _fill(engine: Any, incidents: int, items: int) -> None:
    """Insert the synthetic rows: ``incidents`` incidents with their violation types,
    ``items`` items each with one name. No ledger leaf, no custody event."""
    from sprava.backends.db.catalogue_tables import incident, incident_violation
    from sprava.backends.db.tables import item, item_name

    rng = random.Random(20200809)
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":  # a big page cache for this connection only
            _raw(conn, "PRAGMA cache_size=-500000")
        with conn.begin():
            rows, violations = _incident_rows(rng, incidents)
            _bulk_insert(conn, incident, rows)
            _bulk_insert(conn, incident_violation, violations)
        log(f"  {incidents:,} incidents, {len(violations):,} violation types")
        for first in range(0, items, _COMMIT):
            chunk_items, chunk_names = _item_rows(rng, first, min(_COMMIT, items - first))
            with conn.begin():
                _bulk_insert(conn, item, chunk_items)
                _bulk_insert(conn, item_name, chunk_names)
            log(f"  {first + len(chunk_items):,} items")


def _settle(engine: Any) -> None:
    """Leave the database as a running instance would have it after the load.

    SQLite: the WAL emptied, and no ``ANALYZE``: Sprava never runs it, so real instances
    plan their queries without statistics, and so does this benchmark. (Statistics taken
    while the search index was still empty also made every later FTS5 insert slower as
    the index grew, tenfold after 10,000 documents.) PostgreSQL: ``ANALYZE``, which
    autovacuum would run soon after a load this size anyway.
    """
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":  # the driver connection is in autocommit mode
            _raw(conn, "PRAGMA wal_checkpoint(TRUNCATE)")
        else:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()


def _raw(conn: Any, sql: str) -> None:
    """A statement on the driver's connection, so that SQLAlchemy opens no transaction."""
    conn.connection.dbapi_connection.execute(sql)


def _index(instance: Any) -> int:
    """Index every incident and item with Sprava's own indexer; the documents written.

    The bulk-loaded rows have no ledger leaf for the indexer to follow, so they are put
    in its queue (as the analysis triggers put items there) with the index marked up to
    date with the ledger, and one catch-up indexes the queue, 5,000 records a
    transaction: what the first search after upgrading an instance to schema 0005 does.
    """
    from sqlalchemy import delete, func, insert, literal, select

    from sprava.backends.db.catalogue_tables import incident
    from sprava.backends.db.engine import read_transaction, write_transaction
    from sprava.backends.db.search_tables import search_queue, search_state
    from sprava.backends.db.tables import item, ledger_head
    from sprava.search.indexer import INDEX_VERSION, catch_up

    with write_transaction(instance.engine) as conn:
        size = conn.execute(select(ledger_head.c.size)
                            .where(ledger_head.c.id == 1)).scalar() or 0
        conn.execute(delete(search_state))
        conn.execute(insert(search_state).values(id=1, ledger_size=size, version=INDEX_VERSION,
                                                 updated_at=datetime.now(UTC)))
        conn.execute(delete(search_queue))
        for kind, column in (("incident", incident.c.id), ("item", item.c.sha256)):
            conn.execute(insert(search_queue).from_select(
                ["kind", "ref"], select(literal(kind), column)))
        queued = int(conn.execute(select(func.count()).select_from(search_queue)).scalar_one())
    log(f"  indexing {queued:,} records")
    done = threading.Event()

    def progress() -> None:
        began = time.perf_counter()
        while not done.wait(60):
            with read_transaction(instance.engine) as conn:
                left = conn.execute(select(func.count()).select_from(search_queue)).scalar_one()
            spent = time.perf_counter() - began
            log(f"  indexed {queued - left:,} of {queued:,} records in {spent:.0f} s")

    watcher = threading.Thread(target=progress, daemon=True)
    watcher.start()
    try:
        return catch_up(instance)
    finally:
        done.set()
        watcher.join()


def _cached_instance(incidents: int, items: int, database_url: str | None
                     ) -> tuple[Path, dict[str, Any]]:
    """The folder of an instance holding the synthetic rows and their search index, built
    if missing; and what its build took (``{"cached": True, …}`` when it came from the
    cache: the figures are those of the build)."""
    from sprava.instance import init_instance

    folder = CACHE / _cache_key(incidents, items, database_url)
    if (folder / "complete").exists():
        built = {"cached": True, **json.loads((folder / "complete").read_text())}
        if database_url is None:
            return folder, built
        instance = _open(folder, database_url)
        try:
            if _counts(instance.engine) >= (incidents, items):
                return folder, built
        finally:
            instance.close()
        raise RuntimeError(f"{database_url} no longer holds the benchmark's rows; empty it "
                           f"and remove {folder}")
    CACHE.mkdir(parents=True, exist_ok=True)
    building = CACHE / f"{folder.name}.building-{os.getpid()}"
    shutil.rmtree(building, ignore_errors=True)
    log(f"building the instance ({incidents:,} incidents, {items:,} items) in {building}")
    began = time.perf_counter()
    explicit = {"database_url": database_url} if database_url else None
    instance, _ = init_instance(_settings(building, database_url), explicit=explicit)
    try:
        if _counts(instance.engine) != (0, 0):
            raise RuntimeError(f"{database_url} is not empty: the benchmark needs an empty "
                               "database to fill")
        _fill(instance.engine, incidents, items)
        filled = time.perf_counter()
        documents = _index(instance)
        indexed = time.perf_counter()
        _settle(instance.engine)
    finally:
        instance.close()
    built = {"fill_seconds": round(filled - began, 1),
             "index_seconds": round(indexed - filled, 1), "documents": documents,
             "build_seconds": round(time.perf_counter() - began, 1)}
    log(f"  built: {built}")
    (building / "complete").write_text(json.dumps(built) + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    building.rename(folder)
    stale = folder.name.rsplit("-v", 1)[0] + "-v"  # the same size, an older schema or data
    for old in CACHE.iterdir():
        if old.name.startswith(stale) and old != folder and ".building-" not in old.name:
            log(f"removing the outdated cached instance {old}")
            shutil.rmtree(old, ignore_errors=True)
    return folder, {"cached": False, **built}


def _open(home: Path, database_url: str | None) -> Any:
    from sprava.instance import open_instance

    return open_instance(_settings(home, database_url))


# --- one run: accounts, the server ---------------------------------------------------------

def _accounts(home: Path, database_url: str | None) -> str:
    """A coordinator and an investigator (custody events like any others), and an API
    token of the investigator's, made through the accounts service; then the search index
    is caught up with those events, so that each search starts with the one read of an
    index that is up to date. Returns the token."""
    from sprava.accounts import service, sessions
    from sprava.search.indexer import catch_up

    suffix = "" if database_url is None else f"-{int(time.time())}"
    instance = _open(home, database_url)
    try:
        coordinator, _ = service.create_account(instance, {
            "username": f"bench-coordinator{suffix}", "role": "coordinator",
            "password": PASSWORD}, actor="sprava:bench")
        investigator, _ = service.create_account(instance, {
            "username": f"bench-investigator{suffix}", "role": "investigator",
            "password": PASSWORD}, actor=coordinator.actor)
        _, token = sessions.create_token(instance, sessions.Principal(investigator, "token"),
                                         {"name": "api_load", "expires_days": 1})
        catch_up(instance)
    finally:
        instance.close()
    return token


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _get(url: str, token: str | None = None, timeout: float = 30.0) -> tuple[int, bytes]:
    # only ever http://127.0.0.1:PORT/... built here
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@dataclass
class Server:
    base: str  # http://127.0.0.1:PORT
    pid: int
    log: Path


@contextlib.contextmanager
def _serving(ctx: Ctx, home: Path, work: Path) -> Iterator[Server]:
    """``sprava serve`` on a free loopback port; stopped (SIGINT, then SIGKILL) however the
    block ends."""
    port = _free_port()
    log_path = work / "serve.log"
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(
            [ctx.sprava, "--home", str(home), "serve", "--listen", f"127.0.0.1:{port}"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=child_env())
    server = Server(f"http://127.0.0.1:{port}", proc.pid, log_path)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"sprava serve exited with {proc.returncode}: "
                                   f"{log_path.read_text(errors='replace')[-2000:]}")
            with contextlib.suppress(OSError):
                if _get(f"{server.base}{PREFIX}/health", timeout=2)[0] == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("sprava serve did not answer within 60 s")
            time.sleep(0.2)
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# --- the scenarios -------------------------------------------------------------------------

def _query(path: str, **params: Any) -> str:
    return f"{PREFIX}{path}?{urllib.parse.urlencode(params, doseq=True)}"


def _rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _codes() -> list[str]:
    from sprava.catalogue.vocabulary import shipped_terms

    return sorted(t.code for t in shipped_terms())


def _limit(rng: random.Random) -> int:
    return rng.choice((20, 50, 50, 50, 100))


def incident_paths(rng: random.Random, count: int = 300) -> list[str]:
    """The incident list as people open it: the first 20 pages, no filter."""
    out = []
    for _ in range(count):
        limit = _limit(rng)
        out.append(_query("/incidents", limit=limit, offset=rng.randrange(0, 20) * limit))
    return out


def filtered_paths(rng: random.Random, count: int = 300) -> list[str]:
    """The incident list filtered: by status, by violation type, by a window of start
    times, and by all three; the first pages of each."""
    codes = _codes()
    out = []
    for _ in range(count):
        kind = rng.random()
        limit = _limit(rng)
        params: dict[str, Any] = {"limit": limit, "offset": rng.randrange(0, 5) * limit}
        if kind < 0.25:
            params["status"] = rng.choice(_STATUSES)
        elif kind < 0.55:
            params["violation_type"] = rng.choice(codes)
        elif kind < 0.8:
            since = datetime(2020 + rng.randrange(5), rng.randrange(1, 13), 1, tzinfo=UTC)
            until = since + timedelta(days=rng.choice((7, 31, 92)))
            params.update(since=_rfc3339(since), until=_rfc3339(until))
        else:
            since = datetime(2020 + rng.randrange(5), 1, 1, tzinfo=UTC)
            params.update(status=rng.choice(_STATUSES), violation_type=rng.choice(codes),
                          since=_rfc3339(since), until=_rfc3339(since + timedelta(days=365)))
        out.append(_query("/incidents", **params))
    return out


def deep_paths(rng: random.Random, incidents: int, count: int = 200) -> list[str]:
    """Deep pages of the incident list: offsets from 1 % to 20 % of all incidents (1,000
    to 20,000 of 100,000), a quarter of them among the reported ones (55 % of all)."""
    out = []
    for _ in range(count):
        limit = _limit(rng)
        offset = rng.randrange(incidents // 100, incidents // 5) // limit * limit
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if rng.random() < 0.25:
            params["status"] = "reported"
        out.append(_query("/incidents", **params))
    return out


def item_paths(rng: random.Random, count: int = 100) -> list[str]:
    """The item list: pages up to offset 5,000."""
    out = []
    for _ in range(count):
        limit = rng.choice((50, 50, 100))
        out.append(_query("/items", limit=limit, offset=rng.randrange(0, 5000 // limit) * limit))
    return out


# What people type, in Cyrillic and in Latin letters: places in several spellings, acts,
# surname prefixes (the last word is also a prefix), file names.
CYRILLIC_WORDS = ("Мінск", "Минск", "Гомель", "Гродна", "Брэст", "Віцебск", "затрымання",
                  "задержание", "журналістаў", "Окрестина", "Бандар", "Шевч", "Кавалёў",
                  "разгон Минск", "слезоточивый газ", "избиение задержанных")
LATIN_WORDS = ("Minsk", "Homiel", "Gomel", "Hrodna", "Brest", "Vitebsk", "Akrestsina",
               "Kaval", "Bondarenko", "Shevch", "rubber bullets", "journalists detained",
               "IMG 2020", "Screenshot 20210", "photo", "tear gas Minsk")


def search_paths(rng: random.Random, words: Sequence[str], count: int = 200) -> list[str]:
    """Searches for ``words``: half of them alone, half with filters (a kind, a violation
    type, a status, a place, a window of time), some beyond the first page."""
    codes = _codes()
    out = []
    for _ in range(count):
        params: dict[str, Any] = {"q": rng.choice(words), "limit": 20}
        kind = rng.random()
        if kind < 0.1:
            params["kind"] = "incident"
        elif kind < 0.2:
            params["kind"] = "item"
        elif kind < 0.3:
            params.update(kind="incident", violation_type=rng.choice(codes))
        elif kind < 0.4:
            params.update(kind="incident", status=rng.choice(_STATUSES))
        elif kind < 0.45:
            place = rng.choice(_PLACES)[0]
            params["place"] = place[rng.randrange(len(place))]
        elif kind < 0.5:
            since = datetime(2020 + rng.randrange(5), rng.randrange(1, 13), 1, tzinfo=UTC)
            params.update(since=_rfc3339(since), until=_rfc3339(since + timedelta(days=92)))
        if rng.random() < 0.2:
            params["offset"] = rng.choice((20, 40, 100))
        out.append(_query("/search", **params))
    return out


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    paths: list[str]
    token: bool = True
    target: bool = True  # whether issue 4's p99 target applies


def scenarios(rng: random.Random, incidents: int) -> list[Scenario]:
    """The peer first, then the scenarios in a fixed order."""
    return [
        Scenario("health", "health (peer)", [f"{PREFIX}/health"], token=False, target=False),
        Scenario("incidents", "incident list", incident_paths(rng)),
        Scenario("filtered", "incident list, filtered", filtered_paths(rng)),
        Scenario("deep", "incident list, deep pages", deep_paths(rng, incidents)),
        Scenario("search_cyrillic", "search, Cyrillic", search_paths(rng, CYRILLIC_WORDS)),
        Scenario("search_latin", "search, Latin", search_paths(rng, LATIN_WORDS)),
        Scenario("items", "item list", item_paths(rng), target=False),
    ]


# --- measuring -----------------------------------------------------------------------------

def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Load:
    """What wrk measured for one scenario."""

    label: str
    seconds: float
    requests: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    errors: int  # non-2xx/3xx answers, socket errors and timeouts
    error_detail: dict[str, int]
    statuses: dict[str, int]
    server_cpu: float = 0.0  # CPU seconds the server used meanwhile
    load_average: str = ""  # of the machine, as the measurement started

    @property
    def cpu_ms(self) -> float:
        """Server CPU per request: what a request costs, whatever else runs on the machine."""
        return self.server_cpu / self.requests * 1000 if self.requests else 0.0

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def _wrk(base: str, paths: Path, token: Path | None, seconds: float, label: str) -> Load:
    cmd = ["wrk", "-t", str(THREADS), "-c", str(CONNECTIONS), "-d", f"{seconds:g}s",
           "--timeout", f"{WRK_TIMEOUT_S}s", "--latency", "-s", str(LUA), base, "--",
           str(paths), str(token or "")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120,
                          check=False)
    found = [line for line in done.stdout.splitlines() if line.startswith("WRK_JSON ")]
    if done.returncode != 0 or not found:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr[-2000:]}"
                           f"{done.stdout[-2000:]}")
    data = json.loads(found[-1].removeprefix("WRK_JSON "))
    lat, errs = data["latency_us"], data["errors"]
    return Load(label, data["duration_us"] / 1e6, data["requests"], lat["p50"] / 1000,
                lat["p90"] / 1000, lat["p99"] / 1000, lat["max"] / 1000, lat["mean"] / 1000,
                sum(errs.values()), errs, data["statuses"])


def _check_paths(server: Server, token: str | None, paths: Sequence[str]) -> list[float]:
    """Every distinct request once, one at a time: each must answer 200 with a page (so
    that a typo in a filter cannot pass as a fast 422); the seconds each took."""
    times = []
    for path in dict.fromkeys(paths):
        began = time.perf_counter()
        status, body = _get(server.base + path, token, timeout=120)
        times.append(time.perf_counter() - began)
        if status != 200:
            raise RuntimeError(f"GET {path} answered {status}: {body[:300]!r}")
        if path != f"{PREFIX}/health" and "total" not in json.loads(body):
            raise RuntimeError(f"GET {path} answered no page: {body[:300]!r}")
    return times


def _write_lines(path: Path, lines: Sequence[str]) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def _measure(server: Server, scenario: Scenario, token_file: Path, token: str,
             work: Path, seconds: float, warm: float) -> tuple[Load, list[float]]:
    """Check every request once, warm the server up for ``warm`` seconds, then measure."""
    label = scenario.label
    paths_file = _write_lines(work / f"{scenario.key}.paths", scenario.paths)
    auth = token_file if scenario.token else None
    log(f"{label}: {len(set(scenario.paths))} distinct requests, each once")
    single = _check_paths(server, token if scenario.token else None, scenario.paths)
    log(f"{label}: warm-up, {warm:g} s of load")
    _wrk(server.base, paths_file, auth, warm, label)
    load_average = loadavg()
    log(f"{label}: {CONNECTIONS} connections for {seconds:g} s (load average {load_average})")
    cpu = _cpu_seconds(server.pid)
    load = _wrk(server.base, paths_file, auth, seconds, label)
    load.server_cpu = _cpu_seconds(server.pid) - cpu
    load.load_average = load_average
    log(f"{label}: {load.rate:,.0f} requests/s, p50 {load.p50_ms:.1f} ms, "
        f"p99 {load.p99_ms:.1f} ms, errors {load.errors}, server CPU {load.cpu_ms:.1f} ms "
        "a request"
        + (f" {load.error_detail}, answers {load.statuses}" if load.errors else ""))
    return load, single


def _rows(scenario: Scenario, load: Load, peer: Load, single: Sequence[float],
          peer_single: Sequence[float]) -> list[Row]:
    name, label = "GET /health", scenario.label
    # wrk reports only the requests that finished: with none, its percentiles are zeros
    finished = load.requests > 0
    met = finished and load.p99_ms <= TARGET_P99_MS if scenario.target else None
    if not finished:
        label += " (no request finished)"
    return [
        Row(f"{label}: p50", "ms", load.p50_ms, name, peer.p50_ms),
        Row(f"{label}: p99", "ms", load.p99_ms, name, peer.p99_ms,
            f"≤ {TARGET_P99_MS:g} ms" if scenario.target else "—", met),
        Row(f"{label}: requests/s", "/s", load.rate, name, peer.rate),
        Row(f"{label}: errors, {load.errors:,} of {load.requests:,}", "%",
            100 * load.errors / max(load.requests, 1), name,
            100 * peer.errors / max(peer.requests, 1), "0", finished and load.errors == 0),
        Row(f"{label}: server CPU a request", "ms", load.cpu_ms, name, peer.cpu_ms),
        Row(f"{label}: one client at a time, median", "ms", median(single) * 1000, name,
            median(peer_single) * 1000),
    ]


def run(ctx: Ctx) -> Result:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed: run scripts/install-bench-deps.sh")
    database_url = os.environ.get(DB_URL_ENV) or None
    incidents, items = (10_000, 100_000) if ctx.quick else (100_000, 1_000_000)
    seconds, warm = (5.0, 2.0) if ctx.quick else (30.0, 5.0)
    backend = "SQLite" if database_url is None else "PostgreSQL"
    result = Result(NAME, f"API under load on {backend}: {incidents:,} incidents, {items:,} "
                          f"items, {CONNECTIONS} connections, {seconds:g} s a scenario")
    cached, built = _cached_instance(incidents, items, database_url)
    log(f"instance {'from the cache' if built['cached'] else 'built'}: {cached}")
    plan = scenarios(random.Random(4), incidents)
    loads: dict[str, Load] = {}
    singles: dict[str, list[float]] = {}
    details: dict[str, Any] = {"incidents": incidents, "items": items, "backend": backend,
                               "cache": str(cached), "build": built,
                               "connections": CONNECTIONS, "threads": THREADS,
                               "seconds": seconds, "warm_up_seconds": warm}
    with ctx.tempdir(NAME) as work:
        home = cached
        if database_url is None:
            home = work / "inst"
            began = time.perf_counter()
            shutil.copytree(cached, home, ignore=shutil.ignore_patterns("complete"))
            log(f"copied the cached instance in {time.perf_counter() - began:.1f} s")
        token = _accounts(home, database_url)
        token_file = work / "token"
        token_file.touch(mode=0o600)
        token_file.write_text(token + "\n")
        with _serving(ctx, home, work) as server:
            log(f"sprava serve on {server.base} (pid {server.pid})")
            for scenario in plan:
                loads[scenario.key], singles[scenario.key] = _measure(
                    server, scenario, token_file, token, work, seconds, warm)
    peer = loads["health"]
    for scenario in plan[1:]:
        result.rows += _rows(scenario, loads[scenario.key], peer, singles[scenario.key],
                             singles["health"])
    details["loads"] = {k: vars(v) | {"rate": v.rate, "cpu_ms": v.cpu_ms}
                        for k, v in loads.items()}
    details["one_at_a_time_ms"] = {k: [round(s * 1000, 2) for s in v]
                                   for k, v in singles.items()}
    details["paths"] = {s.key: sorted(set(s.paths)) for s in plan}
    result.notes += [
        "peer: the same wrk load on GET /api/v1/health of the same server (no login, no "
        "database): what the HTTP stack costs; 'Sprava÷peer' is each figure as a multiple of "
        "that floor.",
        f"wrk -t {THREADS} -c {CONNECTIONS} -d {seconds:g}s --latency --timeout "
        f"{WRK_TIMEOUT_S}s, after a {warm:g} s warm-up; every distinct request was first "
        "checked once to answer 200 with a page ('one client at a time'). Requests come "
        "from an investigator's API token. Errors: non-2xx answers, socket errors and "
        "timeouts.",
        f"the {incidents:,} incidents and {items:,} items were inserted in bulk and bypass "
        "the ledger: they have no custody events, so `sprava verify` is not part of this "
        "benchmark; the accounts and the token are real custody events.",
        f"the search index was built by Sprava's indexer when the instance was built: "
        f"{built.get('documents', 0):,} documents in {built.get('index_seconds', 0):,.0f} s "
        f"(rows inserted in {built.get('fill_seconds', 0):,.0f} s)"
        + (f"; the instance came from the cache ({cached})." if built["cached"] else "."),
        "load average (1, 5, 15 min) as each scenario's measurement started: "
        + "; ".join(f"{v.label} {v.load_average}" for v in loads.values()) + ".",
    ]
    for load in loads.values():
        if not load.requests:
            result.notes.append(f"{load.label}: no request finished within the "
                                f"{seconds:g} s (wrk counts a request only when it is answered, "
                                f"or as a timeout after {WRK_TIMEOUT_S} s)")
        if load.errors:
            result.notes.append(f"{load.label} errors: {load.error_detail}, answers "
                                f"{load.statuses}")
    result.details = details
    return result
