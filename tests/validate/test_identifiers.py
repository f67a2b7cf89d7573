"""Identifier checks against real, openly licensed test vectors (tests/data) and, when present,
the full shared collection (../shared/testdata/real)."""

from __future__ import annotations

from pathlib import Path

import pytest

from assets.validate.identifiers import org_code_ok, ric_ok, ric_to_18, uscc_ok

DATA = Path(__file__).parents[1] / "data"
SHARED = Path(__file__).parents[2].parent / "shared" / "testdata" / "real"

# Documented choices where sources disagree (DISPUTED lines and lenient-area cases).
CHOICES = {
    # area code created after the year of birth: tolerated (ID numbers do not change when a county
    # is renamed; stdnum's strict check would reject every 巫山县 500237 resident born before 1997)
    "411082198901010002": True,
    "500154199301135886": True,
    "110111198012010078": True,  # listed invalid by stdnum's strict area-at-birth check: we accept
    # area code abolished before the year of birth: rejected
    "110201199312010077": False,
    # all-ones 15-digit number (hutool accepts): a placeholder, rejected
    "111111111111111": False,
    # Masuit asserts valid, GB 32100 check digit fails (expected G): rejected
    "91350200752941808B": False,
}


def vectors(path: Path):
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        value, source, note = (line.split("\t") + ["", ""])[:3]
        yield value, source, note


def expected(value: str, listed_valid: bool, note: str) -> bool:
    if value in CHOICES:
        return CHOICES[value]
    if "policy decision (normalise vs reject)" in note:
        return True  # lower-case letters: ingest upper-cases codes; valid after normalisation
    return listed_valid


def check_file(path: Path, fn, listed_valid: bool) -> list[str]:
    wrong = []
    n = 0
    for value, source, note in vectors(path):
        n += 1
        if fn(value) != expected(value, listed_valid, note):
            wrong.append(f"{value} ({source}: {note})")
    assert n > 0, f"no vectors in {path}"
    return wrong


@pytest.mark.parametrize("name,fn,valid", [
    ("uscc_valid.txt", uscc_ok, True), ("uscc_invalid.txt", uscc_ok, False),
    ("ric_valid.txt", ric_ok, True), ("ric_invalid.txt", ric_ok, False),
])
def test_copied_vectors(name, fn, valid):
    assert check_file(DATA / name, fn, valid) == []


@pytest.mark.skipif(not SHARED.exists(), reason="shared test data not present")
@pytest.mark.parametrize("name,fn,valid", [
    ("uscc_valid.txt", uscc_ok, True), ("uscc_invalid.txt", uscc_ok, False),
    ("ric_valid.txt", ric_ok, True), ("ric_invalid.txt", ric_ok, False),
])
def test_full_shared_vectors(name, fn, valid):
    assert check_file(SHARED / name, fn, valid) == []


def test_copied_files_hold_only_open_licences():
    allowed = {"STDNUM", "HUTOOL", "IDCHECK", "UTILHELPERS", "ISSUE9", "JXLWQQ", "VALIDATORJS", "GUANGUANS"}
    for path in DATA.glob("*.txt"):
        assert {s for _v, s, _n in vectors(path)} <= allowed, path


def test_disputed_choices():
    for value, want in CHOICES.items():
        fn = uscc_ok if value == "91350200752941808B" else ric_ok
        assert fn(value) is want, value


def test_placeholders_and_forms():
    assert not uscc_ok("00000000000000000X")
    assert not ric_ok("111111111111111111")
    assert not ric_ok("000000000000000000")
    assert ric_ok("44011320141005001x")  # lower-case x
    assert ric_to_18("150102880730303") == "150102198807303035"  # 15 → 18 (hutool's conversion)
    assert ric_ok("150102880730303")
    assert not ric_ok("610104620932690")  # 15 digits with a bad date
    assert not ric_ok("11010519491231002Y")
    # our own county, born before 500237 existed (1997): accepted (stdnum alone rejects it)
    from stdnum.cn import ric

    body = "50023719800101123"
    number = body + ric.calc_check_digit(body + "0")
    assert not ric.is_valid(number) and ric_ok(number)


def test_org_code():
    assert org_code_ok("60003734-1")  # organisation code inside 91110000600037341L
    assert org_code_ok("600037341")
    assert not org_code_ok("600037342")
    assert not org_code_ok("6000373")
    assert org_code_ok("MA5UM6TF7")  # from 91500105MA5UM6TF71


def test_uscc_fast_path_agrees_with_stdnum():
    """uscc_ok's own path for compact values gives stdnum's answer: valid numbers, every single
    character changed, lower case, separators, full-width and other non-ASCII forms."""
    import random

    from stdnum.cn import uscc as stdnum_uscc

    rng = random.Random(13)
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    values = []
    for _ in range(3000):
        body = "".join(rng.choice("0123456789") for _ in range(8)) + "".join(rng.choice(alphabet) for _ in range(9))
        good = body + stdnum_uscc.calc_check_digit(body)
        values += [good, body + rng.choice(alphabet + "IOSVZ"), good.lower(), good[:6] + "-" + good[6:],
                   " " + good, good[:17], good + "1"]
        i = rng.randrange(18)
        values.append(good[:i] + rng.choice(alphabet + "IOZSVio-") + good[i + 1:])
        values.append(good.translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789"}))  # full-width digits
    assert any(stdnum_uscc.is_valid(v) for v in values) and not all(stdnum_uscc.is_valid(v) for v in values)
    assert [uscc_ok(v) for v in values] == [stdnum_uscc.is_valid(v) for v in values]
