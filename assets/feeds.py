"""Asset keys per feed, generated from the contracts.

Each stage is one Dagster ``multi_asset`` (one step per stage in a night: the stages work on all
feeds together and share one DuckDB writer) that yields one asset per feed, keyed
``<feed>/<stage>`` — ``penalties/received_rows``, ``penalties/validated_rows``,
``penalties/warehouse_records``, ``penalties/daily_metrics``. So in the Dagster UI each feed is a
folder with its own lineage, checks, materialisation history and plots, as PUDL and
dagster-open-platform do with an asset per table, while a night still runs four steps.

The feeds are those of the shipped catalog (``contracts/*.yaml``, enabled ones) when the code
location loads; a new contract adds its four assets and checks without code. Site-wide outputs
(``feedback_workbooks``, ``data_docs``, ``monthly_indicators``) keep one key each and depend on
every feed's asset of the stage they read (:func:`stage_keys`).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import dagster as dg

from contracts import Contract, catalog

STAGES = ("received_rows", "validated_rows", "warehouse_records", "daily_metrics")


def catalog_feeds() -> dict[str, Contract]:
    """The contracts the asset graph is generated from (feed id → contract, catalog order)."""
    return dict(catalog())


FEEDS: tuple[str, ...] = tuple(catalog_feeds())


def feed_key(feed: str, stage: str) -> dg.AssetKey:
    return dg.AssetKey([feed, stage])


def stage_keys(stage: str, feeds: Iterable[str] = FEEDS) -> list[dg.AssetKey]:
    """Every feed's key of one stage: what a site-wide asset downstream of that stage depends on."""
    return [feed_key(f, stage) for f in feeds]


def feed_of(key: dg.AssetKey) -> str:
    return key.path[0]


def feed_specs(
    stage: str,
    *,
    group: str,
    description: str,
    kinds: set[str],
    owners: Sequence[str],
    upstream: str | None = None,
) -> list[dg.AssetSpec]:
    """One spec per feed for ``stage``; ``upstream`` is the previous stage of the same feed."""
    specs = []
    for feed, contract in catalog_feeds().items():
        specs.append(dg.AssetSpec(
            key=feed_key(feed, stage),
            group_name=group,
            description=f"【{contract.title}（{feed}）】{description}",
            kinds=kinds,
            owners=list(owners),
            deps=[feed_key(feed, upstream)] if upstream else [],
            tags={"feed": feed},
        ))
    return specs


def feed_checks(stage: str, name: str, description: str, *, blocking: bool = False) -> list[dg.AssetCheckSpec]:
    """The same check declared on every feed's asset of ``stage``."""
    return [dg.AssetCheckSpec(name, asset=feed_key(f, stage), blocking=blocking, description=description) for f in FEEDS]
