"""``credit-etl init DIR``: write an office's deployment folder, and validate one.

The folder holds everything a county describes about itself (contracts/config.py has the
layout); the installed package is never edited. Files are written with Chinese comments so a
data officer can fill them in without reading code. ``init`` refuses to overwrite an existing
folder's files.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from contracts.config import (
    CALENDARS,
    LOCAL_CONTRACTS,
    OVERLAYS,
    PACKAGE_DIR,
    REGISTRY_FILE,
    SETTINGS_FILE,
    OfficeConfig,
    load_office_config,
)
from contracts.loader import ContractError


def _uscc(body: str) -> str:
    """A sample USCC with valid check digits (the office replaces it with the real one)."""
    from stdnum.cn import uscc

    return body + uscc.calc_check_digit(body)


SETTINGS_TEMPLATE = """\
# {name}（{county}）公共信用信息归集：办公室设置。
# 本目录是本单位的全部配置；升级 credit-etl 不会改动这里的文件。
# 每条命令用 --config {folder} 或环境变量 CREDIT_ETL_CONFIG 指向本目录。

# 分区起始日：夜间归集和补跑可处理的最早接收日（YYYY-MM-DD）。
first_partition_day: {first_day}

# 静默阈值：部门连续多少天没有任何报送即在夜间结果中提示。
silence_days: 7

# 脱敏：除数据合同中标为 personal 的字段外，本单位另外按个人信息脱敏的字段（信息类别: [字段名]）。
# 脱敏规则只有一套（身份证号保留前6后4，手机号前3后4，地址前6个字），不可在此更改。
masking:
  personal_fields: {{}}
  #  penalties: [legal_rep_name]

# 向上推送（推送至市、省社会信用信息平台）：每晚推送上次确认之后新增或变更的记录、
# 撤销和信用修复产生的撤回。令牌只从环境变量读取，这里只写变量名。
push: []
#- name: 市社会信用信息平台
#  url: https://xy.example.gov.cn/api/exchange     # 平台提供的接收地址
#  token_env: CREDIT_ETL_PUSH_TOKEN                 # 保存令牌的环境变量名
#  format: json                                     # json 或 csv（表头为790号文件字段代码）
#  feeds: []                                        # 留空表示全部信用记录类别
#  max_attempts: 4                                  # 每批最多尝试次数（间隔按 backoff_seconds 倍增）
#  backoff_seconds: 2

# 保留期限：定期清理任务删除早于此的 Dagster 运行历史，以及没有任何记录引用的落地原始文件。
retention:
  run_history_days: 400
  landing_days: 1830

# 省级模式（仅省、市平台使用）：接收各县推送，入 Iceberg 数据湖。密钥和目录库地址只从环境变量读取，这里只写变量名。
#province:
#  counties:                                       # 接受推送的县（6位行政区划代码与名称）
#  - {{code: "500237", name: 巫山县}}
#  lake:
#    warehouse: s3://credit-lake/province           # 数据文件所在的桶和前缀
#    endpoint: http://minio.internal:9000           # S3 兼容存储地址（云存储可省略）
#    region: us-east-1
#    access_key_env: CREDIT_ETL_S3_ACCESS_KEY       # 保存访问密钥的环境变量名
#    secret_key_env: CREDIT_ETL_S3_SECRET_KEY
#    catalog_uri_env: CREDIT_ETL_CATALOG_URI        # 保存 PostgreSQL 目录库地址的环境变量名
"""

DEPARTMENTS_TEMPLATE = """\
# {name}（{county}）报送部门登记。每个部门列出应报送的信息类别（feeds）及报送方式（delivery）：
#   inbox：部门把文件放到 数据目录/inbox/<部门代码>/<信息类别>/<YYYY-MM-DD>/（CSV 或 XLSX）；
#   http ：从部门接口拉取 JSON，url 为接口地址，token_env 为保存访问令牌的环境变量名（令牌本身不写在这里）。
# 信息类别：permits 行政许可、penalties 行政处罚、utility_arrears 水电气欠费、agri_subsidies 涉农补贴、
#   declarations 部门台账申报、repairs 信用修复；本地补充目录项放在 contracts/ 目录。
# 下面两个部门是示例，请改为本单位的实际部门（统一社会信用代码为示例值）。
region: {name}
region_code: '{county}'
departments:
- code: scjgj
  name: {name}市场监督管理局
  uscc: '{uscc1}'
  feeds: [permits, penalties, declarations]
  delivery:
    permits: {{kind: inbox, format: csv, encoding: utf-8}}
    penalties: {{kind: inbox, format: csv, encoding: utf-8}}
    declarations: {{kind: inbox, format: csv, encoding: utf-8}}
- code: swj
  name: 国家税务总局{name}税务局
  uscc: '{uscc2}'
  feeds: [penalties, declarations]
  delivery:
    penalties: {{kind: inbox, format: xlsx}}
    declarations: {{kind: inbox, format: xlsx}}
# 接口报送的部门示例：
#- code: zjw
#  name: {name}住房和城乡建设委员会
#  uscc: '...'
#  feeds: [permits]
#  delivery:
#    permits: {{kind: http, format: json, url: 'https://zjw.example.gov.cn/api/permits', token_env: CREDIT_ETL_TOKEN_ZJW}}
"""

CONTRACTS_README = """\
# 本地补充目录（contracts/）

国家目录以外、本地公共信用信息补充目录中的信息类别，每类一个 YAML 数据合同，文件名即信息类别代码
（例如 `contracts/fire_inspections.yaml`，其中 `feed: fire_inspections`）。格式与随软件发布的合同相同
（字段、标准代码、别名、类型、必填、枚举、标识校验、隐私级别、业务主键、时钟字段、时限和跨字段规则），
见 `credit-etl contracts --format md`。国家目录中的类别不能在这里整体替换，只能在 `overlays/` 中扩展。
"""

OVERLAYS_README = """\
# 字段扩展（overlays/）

为国家目录中的信息类别增加本地扩展字段或规则，文件名即信息类别代码，例如 `overlays/penalties.yaml`：

```yaml
feed: penalties
add_fields:               # 本地扩展字段（national: false 表示不属于全国交换格式，不向上推送）
- {name: town, label: 所属乡镇, national: false, max_length: 50}
add_rules: []             # 额外的跨字段规则（格式同合同中的 rules）
# enabled: false          # 本单位不归集该类别时关闭
```

国家格式中的字段不能删除或改写。
"""


def init_office(folder: str | Path, *, county: str = "500000", name: str = "示范县") -> OfficeConfig:
    """Write a deployment folder for county ``county`` (6-digit code) named ``name``, and
    return it validated. Refuses to overwrite files that exist."""
    if not re.fullmatch(r"\d{6}", county):
        raise ValueError(f"行政区划代码应为6位数字 / county code must be 6 digits: {county!r}")
    root = Path(folder).resolve()
    files = {
        SETTINGS_FILE: SETTINGS_TEMPLATE.format(name=name, county=county, folder=root, first_day=date.today().replace(day=1).isoformat()),
        REGISTRY_FILE: DEPARTMENTS_TEMPLATE.format(
            name=name, county=county,
            uscc1=_uscc(f"11{county}000000001"), uscc2=_uscc(f"11{county}000000002"),
        ),
        f"{LOCAL_CONTRACTS}/README.md": CONTRACTS_README,
        f"{OVERLAYS}/README.md": OVERLAYS_README,
        f"{CALENDARS}/README.md": (PACKAGE_DIR / CALENDARS / "README.md").read_text(encoding="utf-8"),
        # the production Dagster instance (PostgreSQL, daemon, run queue, retries, monitoring)
        "dagster_home/dagster.yaml": (Path(__file__).resolve().parent / "deploy" / "dagster.yaml").read_text(encoding="utf-8"),
    }
    existing = [rel for rel in files if (root / rel).exists()]
    if existing:
        raise FileExistsError(f"配置目录中已有文件，未覆盖 / refusing to overwrite: {', '.join(existing)}")
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return validate_deployment(root)


def validate_deployment(root: str | Path | None) -> OfficeConfig:
    """Everything :func:`contracts.config.load_office_config` checks, plus the holiday calendars."""
    from assets.measure.calendar import CalendarFileError, load_calendar_file

    config = load_office_config(root)
    if config.root is not None and config.calendar_dir.is_dir():
        for cal in sorted(config.calendar_dir.glob("*.yaml")):
            try:
                load_calendar_file(cal)
            except CalendarFileError as exc:
                raise ContractError(cal, "file", str(exc).split(": ", 1)[-1]) from None
    return config


def describe_error(exc: ContractError) -> str:
    return f"配置错误 / configuration error: {exc.path}: {exc.location}: {exc.problem}"


def silent_departments(data_dir, registry, day, silence_days: int) -> list[str]:
    """Departments that delivered nothing (no inbox file, no HTTP delivery) in the
    ``silence_days`` received days up to ``day``: one Chinese line each, for the night's output.
    A department that never delivered at all counts from the first received day on record."""
    from datetime import timedelta

    from warehouse.layout import DataDir

    layout = DataDir(data_dir)
    if not layout.db_path.exists():
        return []
    from warehouse.db import connect

    with connect(layout, read_only=True) as con:
        last = dict(con.execute(
            "SELECT dept, max(received_date) FROM ingest_manifest WHERE received_date <= ? GROUP BY dept", [day]
        ).fetchall())
        first = con.execute("SELECT min(received_date) FROM ingest_manifest").fetchone()[0]
    since = day - timedelta(days=silence_days - 1)
    out = []
    for dept in registry.departments:
        seen = last.get(dept.code)
        if seen is not None and seen >= since:
            continue
        if seen is None and (first is None or first > since):
            continue  # too little history to call it silence
        when = f"最近一次报送 {seen}" if seen else "从未报送"
        out.append(f"静默部门：{dept.name}（{dept.code}）已连续 {silence_days} 天以上没有报送（{when}）")
    return out
