"""Great Expectations' pandas engine, made to hand each metric only the columns it reads.

GE 1.24's ``PandasExecutionEngine.get_domain_records`` returns the *whole* batch frame (every
contract and lineage column) for a column or multicolumn domain, and its map-metric partials then
filter that whole frame by a boolean mask (``df[df[column].notnull()]``, the unexpected index
list, the unexpected values) before they read the one column they need. With Arrow-backed string
columns that is one ``take`` per column per filter: at 200,000 rows it was 27,000 takes and a
fifth of the Data Docs step, growing with rows × columns × expectations.

:func:`install` wraps ``get_domain_records`` so that, after GE has applied the domain's own
``row_condition`` and ``ignore_row_if`` on the full frame as before, a column domain gets the
frame of that column and a multicolumn domain the frame of its ``column_list`` (``column_A`` /
``column_B`` for pairs). The rows and their index are GE's own, so every count, unexpected value
and unexpected index is the same; only columns no metric of that domain reads are left out. A
domain naming a column the batch lacks gets the full frame, so GE reports it as before. Table
domains are untouched.
"""

from __future__ import annotations

_installed = False


def _columns(domain_kwargs: dict) -> list[str] | None:
    if "column" in domain_kwargs:
        return [domain_kwargs["column"]]
    if "column_A" in domain_kwargs and "column_B" in domain_kwargs:
        return [domain_kwargs["column_A"], domain_kwargs["column_B"]]
    if domain_kwargs.get("column_list"):
        return list(dict.fromkeys(domain_kwargs["column_list"]))
    return None


def install() -> None:
    global _installed
    if _installed:
        return
    from great_expectations.execution_engine import PandasExecutionEngine

    original = PandasExecutionEngine.get_domain_records

    def get_domain_records(self, domain_kwargs: dict):
        data = original(self, domain_kwargs)
        cols = _columns(domain_kwargs)
        if cols is None or len(cols) >= len(data.columns) or not set(cols).issubset(data.columns):
            return data
        return data[cols]

    get_domain_records.__wrapped__ = original  # type: ignore[attr-defined]
    PandasExecutionEngine.get_domain_records = get_domain_records
    _installed = True
