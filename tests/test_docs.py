"""The docs cannot drift from the code they describe."""

import re
from pathlib import Path

from simulator import create_app, decisions, statuses
from simulator.config import Config
from simulator.errors import ERROR_CODES

ROOT = Path(__file__).resolve().parents[1]


def test_differences_page_is_generated_from_the_decisions_table():
    page = (ROOT / "docs" / "differences.md").read_text()
    assert page == decisions.as_markdown(), "run: python -m simulator.decisions"


def test_statuses_page_is_generated_from_the_status_table():
    page = (ROOT / "docs" / "statuses.md").read_text()
    assert page == statuses.as_markdown(), "run: python -m simulator.statuses"


def test_readme_opens_with_the_install_and_test_commands():
    text = (ROOT / "README.md").read_text()
    commands = re.findall(r"```sh\n(.*?)\n```", text, re.S)[:2]
    assert "pip install -e ." in commands[0] and "shipper-sim serve" in commands[0]
    assert "pytest" in commands[1]
    first_block = text.index("```sh")
    assert first_block < text.index("shipper-sim is a local simulator")


def test_readme_names_the_demo_key_of_the_fixtures():
    app = create_app(Config(start_workers=False))
    demo = app.extensions["shipper_sim"].backend.clients()[0]
    assert demo["api_key"] in (ROOT / "README.md").read_text()


def test_every_control_route_is_in_the_control_api_page():
    app = create_app(Config(start_workers=False))
    page = (ROOT / "docs" / "control-api.md").read_text()
    documented = set(
        re.findall(r"`(?:GET|POST|PUT|PATCH|DELETE) (/_sim[^`?\s]*)", page)
    )
    normalised = {re.sub(r"/(WH|NO|ID)(?=/|$)", "/<>", p) for p in documented}
    missing = []
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<[^>]+>", "<>", rule.rule)
        if not path.startswith("/_sim/") or rule.endpoint.startswith("dashboard"):
            continue
        if path.rstrip("/") not in {n.rstrip("/") for n in normalised}:
            missing.append(rule.rule)
    assert not missing, f"undocumented control routes: {missing}"


def test_every_decided_error_code_is_listed_in_the_differences():
    page = (ROOT / "docs" / "differences.md").read_text()
    for code in (c for c, e in ERROR_CODES.items() if e.decided):
        assert str(code) in page
