"""County pushes for the province tests, made by the real push code (``assets/push``) from real
county warehouses loaded by the county's load stage. A module of its own (not ``conftest``) so
that tests import it by a name no other test folder uses."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from contracts.config import PushTarget

ACCESS, SECRET = "province-test-key", "province-test-secret"  # moto accepts any key pair
COUNTIES = [("500237", "巫山县"), ("500238", "巫溪县")]


def valid_penalty(rng: random.Random, no: str, decided: date, row: int, **over) -> dict:
    from pipelines.samples.ids import make_ric, make_uscc
    from validated_builder import penalty

    return penalty(no, decided, row=row, subject_id_no=make_ric(rng, today=decided),
                   display_end=str(decided + timedelta(days=180)), authority_uscc=make_uscc(rng, "11"), **over)


def valid_permit(rng: random.Random, no: str, decided: date, row: int, **over) -> dict:
    from pipelines.samples.ids import make_ric, make_uscc
    from validated_builder import permit

    return permit(no, decided, row=row, subject_uscc=make_uscc(rng, "91"),
                  legal_rep_id_no=make_ric(rng, today=decided), authority_uscc=make_uscc(rng, "11"), **over)


@dataclass
class Pushed:
    county: str
    day: date
    batches: dict[str, bytes]  # batch_id -> body as POSTed


def county_push(tmp: Path, shipped, county: str, day: date, *, penalties=(), permits=()) -> Pushed:
    """Load rows into a real county warehouse and build the night's push batches with the real
    push code (the bodies a county POSTs to the province)."""
    from assets.load.load import load_day
    from assets.push.push import queue_night
    from validated_builder import write_validated
    from warehouse.db import connect
    from warehouse.layout import DataDir

    contracts, registry = shipped
    registry = registry.model_copy(update={"region_code": county})
    dd = DataDir(tmp / f"county_{county}")
    write_validated(dd, contracts["penalties"], day, passed=list(penalties))
    write_validated(dd, contracts["permits"], day, passed=list(permits))
    load_day(dd, day, contracts)
    target = PushTarget(name="省平台", url="http://127.0.0.1:9/exchange")
    with connect(dd) as con:
        queue_night(con, target, contracts, registry, day)
        rows = con.execute("SELECT batch_id, payload FROM push_batches WHERE night = ? ORDER BY seq", [day]).fetchall()
    return Pushed(county, day, {bid: bytes(p) for bid, p in rows})


def deliver(province_dir: Path, pushed: Pushed) -> None:
    """What the receiver does: each body under inbox/<county>/<day>/<batch_id>.json."""
    from assets.province.pushes import county_day_dir

    folder = county_day_dir(province_dir, pushed.county, pushed.day)
    folder.mkdir(parents=True, exist_ok=True)
    for bid, body in pushed.batches.items():
        (folder / f"{bid}.json").write_bytes(body)
