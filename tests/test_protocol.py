"""docs/protocol.md against the profiles: every setting row's `paper` and `table4-cpu` values
are what those profiles resolve to, and `notebook` is `paper` but for the settings its section
lists, so the document cannot drift from the code."""
import re
import tomllib
from pathlib import Path

import pytest

from bench import config
from bench.analysis.claims import ESTIMANDS, load_published
from bench.spec import RECIPES, SECTIONS

PROTOCOL = Path(__file__).parent.parent / "docs" / "protocol.md"
SETTING_ROW = re.compile(r"^\| `(?P<key>\w+\.\w+)` \| (?P<paper>[^|]*) \| (?P<table4>[^|]*) \|")
VALUE = re.compile(r"^`(?P<toml>[^`]*)`")


def documented_rows() -> list[tuple[str, str, str]]:
    """(section.key, paper cell, table4-cpu cell) of every setting row of the protocol's tables
    (those before the `notebook` section)."""
    settings = PROTOCOL.read_text().split("## The `notebook` profile")[0]
    rows = [SETTING_ROW.match(line) for line in settings.splitlines()]
    return [(m["key"], m["paper"].strip(), m["table4"].strip()) for m in rows if m and m["key"].split(".")[0] in SECTIONS]


def documented_value(cell: str):
    """The TOML value a cell opens with (`absent` for None)."""
    text = VALUE.match(cell)["toml"]
    return None if text == "absent" else tomllib.loads(f"value = {text}")["value"]


def resolved(profile, key: str):
    section, name = key.split(".")
    value = getattr(getattr(profile, section), name)
    return list(value) if isinstance(value, tuple) else value


def test_the_protocol_documents_every_setting_of_every_section():
    documented = {key for key, _, _ in documented_rows()}
    assert documented == {f"{section}.{key}" for section, cls in SECTIONS.items() for key in cls.keys()}


@pytest.mark.parametrize("key, paper, table4", documented_rows())
def test_the_resolved_paper_and_table4_cpu_settings_equal_the_protocol_table(key, paper, table4):
    paper_value = documented_value(paper)
    table4_value = paper_value if table4.startswith("same") else documented_value(table4)
    assert resolved(config.load_profile("paper"), key) == paper_value
    assert resolved(config.load_profile("table4-cpu"), key) == table4_value


def test_the_recipes_differ_in_the_settings_the_protocol_lists_and_no_other():
    section = PROTOCOL.read_text().split("## The two recipes")[1].split("\n\n")[2]
    listed = set(re.findall(r"^\| `(\w+\.\w+)` \|", section, re.M))
    assert listed == {f"{part}.{key}" for part, key in RECIPES["report"]} == {f"{part}.{key}" for part, key in RECIPES["corrected"]}
    report, corrected = (config.load_profile("paper", settings=[f"recipe={name}"]) for name in ("report", "corrected"))
    differing = {f"{s}.{k}" for s in SECTIONS for k in SECTIONS[s].keys() if resolved(report, f"{s}.{k}") != resolved(corrected, f"{s}.{k}")}
    assert differing == listed | {"run.recipe"}


def notebook_rows() -> dict[str, str]:
    """section.key -> `notebook` cell of the rows of the protocol's `notebook` section."""
    section = PROTOCOL.read_text().split("## The `notebook` profile")[1]
    return {m["key"]: m["paper"].strip() for m in map(SETTING_ROW.match, section.splitlines()) if m}


def test_the_notebook_profile_is_paper_but_for_the_settings_its_section_lists():
    paper, notebook = config.load_profile("paper"), config.load_profile("notebook")
    listed = notebook_rows()
    keys = [f"{s}.{k}" for s in SECTIONS for k in SECTIONS[s].keys()]
    assert {key for key in keys if resolved(paper, key) != resolved(notebook, key)} == set(listed)
    assert {key: resolved(notebook, key) for key in listed} == {key: documented_value(cell) for key, cell in listed.items()}


PUBLISHED_ROW = re.compile(r"^\| (\w+) \| (\w+) \| ([\d.]+) \| (\w+) \| (\w+) \| ([^|]+) \| ([^|]+) \|")


def test_every_published_accuracy_says_what_it_is_and_the_protocol_cites_it():
    """Estimand, test images, protocol and source of each published accuracy are data
    (bench/assets/table4_published.csv), and docs/protocol.md cites the same for every one."""
    section = PROTOCOL.read_text().split("### What each published accuracy is")[1].split("\n## ")[0]
    rows = [PUBLISHED_ROW.match(line) for line in section.splitlines()]
    documented = {(m[1], m[2]): (m[3], m[4], m[5], m[6].strip(), m[7].strip()) for m in rows if m}
    accuracies = [line for line in load_published().lines if line.metric == "accuracy"]
    assert documented == {(line.model, line.dataset): (line.printed, line.estimand, line.test_images,
                                                       line.protocol or "none known", line.source)
                          for line in accuracies}
    assert {line.estimand for line in accuracies} <= set(ESTIMANDS)
    assert all(line.source for line in accuracies)
