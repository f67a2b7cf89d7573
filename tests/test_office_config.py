"""An office's deployment folder: ``credit-etl init`` writes it, every command reads contracts,
departments, calendars and settings from it, mistakes are named by file and field, and an HTTP
department without its token is one configuration problem with its own exit status."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from contracts import load_contracts, load_registry
from contracts.config import CONFIG_ENV, active_config, config_problems, reset_caches
from contracts.loader import ContractError, catalog
from pipelines.cli import EXIT_CONFIG, main
from pipelines.office import init_office, validate_deployment


@pytest.fixture(autouse=True)
def _keep_sigpipe():
    """main() restores SIGPIPE's default for `credit-etl ... | head`; pytest must keep ignoring it."""
    import signal

    before = signal.getsignal(signal.SIGPIPE)
    yield
    signal.signal(signal.SIGPIPE, before)


@pytest.fixture
def office(tmp_path, monkeypatch):
    """A fresh deployment folder, active for this test only."""
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    folder = tmp_path / "万州配置"
    init_office(folder, county="500101", name="万州区")
    monkeypatch.setenv(CONFIG_ENV, str(folder))
    reset_caches()
    yield folder
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    reset_caches()


def test_init_writes_a_commented_folder_that_loads(office):
    settings = (office / "settings.yaml").read_text(encoding="utf-8")
    assert "# " in settings and "分区起始日" in settings and "静默阈值" in settings and "push:" in settings
    registry = load_registry()
    assert registry.region == "万州区" and registry.region_code == "500101"
    assert [d.code for d in registry.departments] == ["scjgj", "swj"]
    from stdnum.cn import uscc

    assert all(uscc.is_valid(d.uscc) for d in registry.departments)
    with pytest.raises(FileExistsError):
        init_office(office)


def test_overlays_local_items_and_masking_settings_shape_the_catalog(office):
    (office / "overlays" / "penalties.yaml").write_text(
        "feed: penalties\nadd_fields:\n- {name: town, label: 所属乡镇, max_length: 50}\n"
        "- {name: contact_phone, label: 联系电话, national: false}\n", encoding="utf-8")
    (office / "contracts" / "fire_checks.yaml").write_text(
        "feed: fire_checks\ntitle: 消防检查\nlegal_basis: 本地补充目录\nbusiness_key: [check_no]\n"
        "fields:\n- {name: check_no, label: 检查编号, required: true}\n- {name: check_date, label: 检查日期, type: date}\n",
        encoding="utf-8")
    settings = office / "settings.yaml"
    settings.write_text(settings.read_text(encoding="utf-8").replace(
        "personal_fields: {}", "personal_fields: {penalties: [contact_phone]}"), encoding="utf-8")
    reset_caches()
    contracts = load_contracts()
    assert "fire_checks" in contracts
    pen = contracts["penalties"]
    # extensions are local: never in the national layout (nor pushed upward)
    assert pen.field("town").national is False and pen.field("contact_phone").privacy == "personal"
    from assets.push import pushable_feeds
    from contracts.config import PushTarget

    assert "penalties" in pushable_feeds(PushTarget(name="t", url="http://127.0.0.1:1/"), contracts)
    assert "town" in catalog()["penalties"].field_names  # the cached view agrees
    # the packaged files are untouched: the shipped catalog has no such field
    from contracts import CONTRACTS_DIR

    assert "town" not in load_contracts(CONTRACTS_DIR)["penalties"].field_names


@pytest.mark.parametrize(
    "path, text, where",
    [
        ("settings.yaml", "silence_days: 0\n", "silence_days"),
        ("settings.yaml", "push:\n- {name: 市平台, url: ftp://x, format: json}\n", "push target \"市平台\" (#1): url must"),
        ("overlays/permits.yaml", "feed: permits\nadd_fields:\n- {name: Bad Name, label: x}\n", 'field "Bad Name"'),
        ("overlays/permits.yaml", "feed: permits\nadd_fields:\n- {name: decision_no, label: 重复}\n", "duplicate"),
        ("overlays/permits.yaml", "feed: permits\nadd_fields:\n- {name: town, label: 乡镇, national: true}\n", 'field "town" (#1).national'),
        ("contracts/penalties.yaml", (Path(__file__).parents[1] / "contracts" / "penalties.yaml").read_text(encoding="utf-8"), "feed"),
        ("departments.yaml", "region: x\nregion_code: '1'\ndepartments:\n- {code: a, name: A, uscc: u, feeds: [nosuch]}\n", "nosuch"),
        ("calendars/2027.yaml", "year: 2027\nsource: ''\n", "source"),
    ],
)
def test_a_broken_folder_is_refused_naming_file_and_field(office, path, text, where, capsys):
    target = office / path
    if path == "settings.yaml":
        text = target.read_text(encoding="utf-8") + text
    target.write_text(text, encoding="utf-8")
    reset_caches()
    with pytest.raises(ContractError) as err:
        validate_deployment(office)
    assert err.value.path.name == Path(path).name
    assert where in f"{err.value.location}: {err.value.problem}"
    assert main(["--config", str(office), "contracts"]) == EXIT_CONFIG
    assert Path(path).name in capsys.readouterr().err


def test_missing_folder_is_a_configuration_error(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    assert main(["--config", str(tmp_path / "nope"), "contracts"]) == EXIT_CONFIG
    assert "配置目录不存在" in capsys.readouterr().err
    reset_caches()


def test_settings_reach_the_calendar_and_partitions(office):
    (office / "calendars" / "2027.yaml").write_text(
        "year: 2027\nsource: 测试用安排\nholidays: [2027-01-01, 2027-01-04]\nworkdays: []\n", encoding="utf-8")
    from assets.measure.calendar import WorkCalendar

    cal = WorkCalendar()
    assert cal.calendar_dir == office / "calendars"
    assert not cal.is_workday(date(2027, 1, 4)) and not cal.is_provisional(2027)  # a Monday made a holiday by the office's file
    assert active_config().settings.first_partition_day == date.today().replace(day=1)  # what init wrote


def test_a_missing_http_token_is_one_configuration_problem(office, tmp_path, monkeypatch, capsys):
    regs = office / "departments.yaml"
    regs.write_text(regs.read_text(encoding="utf-8") + (
        "- code: zjw\n  name: 万州区住房和城乡建设委员会\n  uscc: '11500101000000039'\n  feeds: [permits, penalties]\n"
        "  delivery:\n    permits: {kind: http, url: 'http://127.0.0.1:9/api/permits', token_env: WZ_TOKEN_ZJW}\n"
        "    penalties: {kind: http, url: 'http://127.0.0.1:9/api/penalties', token_env: WZ_TOKEN_ZJW}\n"),
        encoding="utf-8")
    monkeypatch.delenv("WZ_TOKEN_ZJW", raising=False)
    reset_caches()
    problems = config_problems(load_registry())
    assert len(problems) == 1 and "WZ_TOKEN_ZJW" in problems[0] and "zjw" in problems[0]
    assert config_problems(load_registry(), {"WZ_TOKEN_ZJW": "t"}) == []
    code = main(["--config", str(office), "--data-dir", str(tmp_path / "data"), "run", "--date", "2026-10-09"])
    err = capsys.readouterr().err
    assert code == EXIT_CONFIG
    assert [line for line in err.splitlines() if "WZ_TOKEN_ZJW" in line] == [problems[0]]
    from warehouse.db import connect
    from warehouse.layout import DataDir

    with connect(DataDir(tmp_path / "data"), read_only=True) as con:  # no rejected delivery per feed
        assert con.execute("SELECT count(*) FROM ingest_manifest WHERE status = 'rejected'").fetchone()[0] == 0


def test_silent_departments_follow_the_threshold(office, tmp_path):
    from datetime import timedelta

    from assets.ingest import ingest_day
    from pipelines.office import silent_departments
    from warehouse.layout import DataDir

    layout = DataDir(tmp_path / "data")
    registry = load_registry()
    day = date(2026, 10, 1)
    drop = layout.inbox / "scjgj" / "penalties" / day.isoformat() / "cf.csv"
    drop.parent.mkdir(parents=True)
    drop.write_text("行政相对人名称,行政处罚决定书文号\n某公司,罚1\n", encoding="utf-8")
    ingest_day(layout, day, load_contracts(), registry)
    assert silent_departments(layout.root, registry, day, 10) == []  # swj: too little history yet
    later = silent_departments(layout.root, registry, day + timedelta(days=10), 10)
    assert len(later) == 2 and "swj" in later[1] and "从未报送" in later[1] and "2026-10-01" in later[0]
    assert silent_departments(layout.root, registry, day + timedelta(days=9), 10) == [later[1]]
