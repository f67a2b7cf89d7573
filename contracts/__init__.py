"""The public credit information catalog as code: one YAML contract per feed.

Every stage imports contracts through this package and nothing else from each other.
"""

from contracts.loader import (
    CONTRACTS_DIR,
    ContractError,
    catalog,
    feed_labels,
    find_feed,
    load_contract,
    load_contracts,
    load_registry,
)
from contracts.model import (
    Condition,
    Contract,
    Deadline,
    Delivery,
    Department,
    DisplayPolicy,
    Field,
    Registry,
    Rule,
    normalise_header,
    to_halfwidth,
)

__all__ = [
    "CONTRACTS_DIR",
    "Condition",
    "Contract",
    "ContractError",
    "Deadline",
    "Delivery",
    "Department",
    "DisplayPolicy",
    "Field",
    "Registry",
    "Rule",
    "catalog",
    "feed_labels",
    "find_feed",
    "load_contract",
    "load_contracts",
    "load_registry",
    "normalise_header",
    "to_halfwidth",
]
