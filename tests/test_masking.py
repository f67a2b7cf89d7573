"""The one masking policy: Python and SQL agree, free text is scrubbed, fields mask by kind."""

import duckdb
import pytest

from contracts import load_contracts
from warehouse.masking import find_unmasked, kind_for_field, mask, mask_field_value, mask_sql, scrub_sql, scrub_text

CASES = [
    ("id", "500237199001011234", "500237********1234"),
    ("id", "50023719900101123X", "500237********123X"),
    ("id", "410101800101123", "410101*****1123"),
    ("id", "E1234567", "********"),
    ("account", "6222021234567890123", "622202*********0123"),
    ("phone", "13812345678", "138****5678"),
    ("phone", "023-5681234", "023****1234"),
    ("address", "重庆市巫山县高唐街道广东中路1号", "重庆市巫山县****"),
    ("address", "巫山县", "***"),
]


@pytest.mark.parametrize("kind,value,expected", CASES)
def test_python_and_sql_mask_alike(kind, value, expected):
    assert mask(value, kind) == expected
    got = duckdb.connect().execute(f"SELECT {mask_sql('$1', kind)}", [value]).fetchone()[0]
    assert got == expected


TEXTS = [
    ("当事人王某（身份证号500237199001011234）无证经营", "当事人王某（身份证号500237********1234）无证经营"),
    ("联系电话13812345678，卡号6222021234567890123。", "联系电话138****5678，卡号622202*********0123。"),
    ("旧证410101800101123", "旧证410101*****1123"),
    ("两人500237199001011234 500237199001011235", "两人500237********1234 500237********1235"),
    ("统一社会信用代码91500237MA5U1234X5，罚款5000元", "统一社会信用代码91500237MA5U1234X5，罚款5000元"),
    ("决定书文号巫市监罚〔2026〕123号", "决定书文号巫市监罚〔2026〕123号"),
    # as an IME types them: full-width digits, separators, the country code, a landline
    ("身份证号５００２３７１９９００１０１１２３４", "身份证号５００２３７********１２３４"),
    ("手机１３８１２３４５６７８", "手机１３８****５６７８"),
    ("电话138-1234-5678或138 1234 5678", "电话138****5678或138****5678"),
    ("微信+8613912345678，+86 13912345678", "微信+86139****5678，+86 139****5678"),
    ("家中座机023-57681234，0571-87654321", "家中座机023****1234，057****4321"),
    ("证号50023719901345123X（出生日期有误）", "证号500237********123X（出生日期有误）"),
    ("罚款1234567元，面积12.5亩", "罚款1234567元，面积12.5亩"),
]


@pytest.mark.parametrize("text,expected", TEXTS)
def test_free_text_scrubbed_alike_in_python_and_sql(text, expected):
    assert scrub_text(text) == expected
    assert duckdb.connect().execute(f"SELECT {scrub_sql('$1')}", [text]).fetchone()[0] == expected
    assert find_unmasked(expected) == []


def test_none_and_empty_pass_through():
    assert mask(None) is None and scrub_text(None) is None and scrub_text("") == ""
    assert duckdb.connect().execute(f"SELECT {scrub_sql('NULL')}").fetchone()[0] is None


def test_unknown_kind_is_an_error():
    with pytest.raises(ValueError, match="unknown mask kind"):
        mask("x", "secret")


def test_every_personal_field_of_every_contract_has_a_kind():
    for contract in load_contracts().values():
        for f in contract.fields:
            if f.privacy == "personal":
                assert kind_for_field(f) in ("id", "account", "phone", "address")
                shown = mask_field_value("500237199001011234", f)
                assert "199001011" not in shown


def test_sql_scrubber_matches_python_on_generated_text():
    """The SQL scrubber skips text that cannot hold a number (SCRUB_CANDIDATE): on texts built
    from digit runs of 9 to 20 (ASCII or full width, mobiles in groups, landlines), letters, X,
    +86 and separators it must give what the Python one gives, numbers found or not."""
    import random

    rng = random.Random(13)
    pieces = ["，", " ", "-", "a", "X", "号", "电话", "身份证", "卡", "+86", "+86 ", "0"]
    wide = str.maketrans("0123456789", "０１２３４５６７８９")
    texts = []
    for _ in range(3000):
        parts = []
        for _ in range(rng.randint(1, 4)):
            parts.append(rng.choice(pieces))
            n = rng.randint(9, 20)
            run = str(rng.randint(1, 9)) + "".join(rng.choice("0123456789") for _ in range(n - 1))
            if rng.random() < 0.5 and n >= 15:  # an ID-like run: a plausible birth date inside
                run = run[:6] + rng.choice(["19900307", "20011231", "18991301"]) + run[14:]
            if rng.random() < 0.15 and n >= 11:  # a mobile written in groups
                run = "1" + rng.choice("3456789") + run[2] + rng.choice(["-", " "]) + run[3:7] + rng.choice(["-", " ", ""]) + run[7:11]
            elif rng.random() < 0.1:  # a landline with its area code
                run = "0" + run[1:rng.choice([3, 4])] + "-" + run[4:4 + rng.choice([7, 8])]
            run += rng.choice(["X", "x", ""]) if rng.random() < 0.2 else ""
            parts.append(run.translate(wide) if rng.random() < 0.2 else run)
        texts.append("".join(parts))
    con = duckdb.connect()
    con.execute("CREATE TABLE t (i INTEGER, x VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(texts)))
    got = dict(con.execute(f"SELECT i, {scrub_sql('x')} FROM t").fetchall())
    changed = 0
    for i, text in enumerate(texts):
        assert got[i] == scrub_text(text), text
        changed += got[i] != text
    assert 0 < changed < len(texts)  # both kinds occur: scrubbed and left alone
