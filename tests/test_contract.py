"""The worker-folder contract (parity/artifacts/contract.py) and the stage registry (parity/compare/stages.py):
declared once in code; FORMATS.md shows the same table; every required file is the evidence of exactly one stage."""

from __future__ import annotations

import re

from parity.artifacts import contract
from parity.compare import stages
from parity.env import PROJECT_ROOT

# Written here, not imported: dropping or reordering a stage must fail a test, not silently lose cases.
EXPECTED_STAGES = ["inputs", "batch_order", "architecture", "initial_weights", "forward", "batch_losses",
                   "final_weights", "predictions", "metrics", "saved_models"]


def test_formats_md_shows_the_contract_as_declared():
    text = (PROJECT_ROOT / "parity" / "FORMATS.md").read_text()
    section = text.split("## Worker output", 1)[1].split("\n## ", 1)[0]
    table = "\n".join(line for line in section.splitlines() if line.startswith("|"))
    assert table == contract.markdown_table(), "run `python -m parity.artifacts.contract` and paste its table"


def test_the_spawner_checks_exactly_the_required_worker_files():
    from parity.run.workers import REQUIRED_FILES

    required = contract.required_files("worker")
    assert REQUIRED_FILES == required
    assert {"batch_order.json", "weights_final.npz", "model.keras"} <= set(required)
    assert "progress.log" not in required and "status.json" not in required  # not required / the spawner's


def test_stages_in_data_flow_order():
    assert stages.STAGES == EXPECTED_STAGES


def test_every_required_file_is_the_evidence_of_exactly_one_stage():
    owners: dict[str, list[str]] = {}
    for st in stages.REGISTRY.values():
        for name in st.files:
            owners.setdefault(name, []).append(st.name)
    for name in contract.required_files("worker") + contract.required_files("runner"):
        assert len(owners.get(name, [])) == 1, (name, owners.get(name))
    listed = {n for a in contract.ARTIFACTS for n in a.names}
    assert set(owners) <= listed, set(owners) - listed  # a stage names only files of the contract


def test_stage_phases_are_phases_the_workers_print():
    printed = set()
    for path in list((PROJECT_ROOT / "python_impl").glob("*.py")) + list((PROJECT_ROOT / "r_impl").rglob("*.R")):
        printed |= set(re.findall(r'"phase (\w+)', path.read_text()))
    assert set(stages.PHASES) == printed
    assert {st.phase for st in stages.REGISTRY.values()} <= printed


def test_a_worker_that_failed_is_reported_at_the_first_stage_it_did_not_write():
    assert [stages.failed_at(p) for p in stages.PHASES] == [
        "inputs", "inputs", "architecture", "batch_order", "predictions", "final_weights", "saved_models"]
    assert stages.failed_at(None) == "inputs"


def test_tolerance_defaults_come_from_the_registry():
    assert stages.DEFAULT_TOLERANCES["inputs"] == (0.0, 0.0)
    assert "batch_order" not in stages.DEFAULT_TOLERANCES and "architecture" not in stages.DEFAULT_TOLERANCES
    assert stages.DEFAULT_TOLERANCES["final_weights"] == (1e-3, 1e-3)
