"""What privacy scans of rendered outputs may let through: an organisation's all-digit unified
social credit code, shown as received in a code field (warehouse.masking), is not a card."""

from __future__ import annotations

import re
import unicodedata

from stdnum.cn import uscc

RIC_SHAPE = re.compile(r"[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx]")
# a code's registration authority + category (GB 32100), 17–19 digits as mistyped; no card scheme
# issues 17–19 digit numbers with these leads (UnionPay 62, Visa 4, Maestro 50/56–69, MasterCard
# 51–55 at 16 digits)
USCC_LEAD = re.compile(r"(?:1[1239]|5[123]|9[123])\d{15,17}")


def organisation_code(number: str) -> bool:
    """An all-digit USCC of an organisation, not a person's number: passes GB 32100, or (a code
    mistyped, shown to a clerk as received) has 17–19 digits behind a registration authority and
    category code; and does not read as area code + birth date."""
    number = unicodedata.normalize("NFKC", number)
    return bool((len(number) == 18 and uscc.is_valid(number) or USCC_LEAD.fullmatch(number))
                and not RIC_SHAPE.fullmatch(number))
