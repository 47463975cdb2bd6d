"""The default parity run, stage by stage, and its report (smoke preset, the real workers)."""

from __future__ import annotations

import base64
import json
import re

import pytest

from parity.testing import CANDIDATES, describe_divergence

# Written here, not imported: a stage dropped from the registry must fail its case, not lose it.
STAGES = ["inputs", "batch_order", "architecture", "initial_weights", "forward", "batch_losses", "final_weights",
          "predictions", "metrics", "saved_models"]


def _pair(doc: dict, candidate: str) -> dict:
    return next(p for p in doc["pairs"] if p["candidate"] == candidate)


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("candidate", CANDIDATES)
def test_stage_bit_identical(smoke_comparison, candidate, stage):
    """Every stage of every R worker is bit-identical to the Python reference on the CPU."""
    pair = _pair(smoke_comparison, candidate)
    result = next(s for s in pair["stages"] if s["stage"] == stage)
    assert result["verdict"] == "identical", f"{candidate} {stage}: {result['summary']}\n" + describe_divergence(pair)


def test_run_verdict_and_marker(smoke_run, smoke_comparison):
    """The run finished (no INCOMPLETE marker), names all three workers and says PARITY."""
    assert not (smoke_run / "INCOMPLETE").exists()
    assert smoke_comparison["ok"], describe_divergence(smoke_comparison)
    assert smoke_comparison["verdict"].startswith("PARITY: bit-identical across python, r-rpy2, r-rscript")
    assert re.fullmatch(r"\d{8}T\d{6}Z-smoke-[0-9a-f]{8}(-\d+)?", smoke_run.name)


def test_crossloads_cover_both_languages(smoke_run):
    """Each saved model was loaded by Python and by R (saved-models stage has real evidence)."""
    for impl in ("python", "r-rpy2", "r-rscript"):
        rec = json.loads((smoke_run / "workers" / impl / "crossload.json").read_text())
        assert rec["python"]["ok"] and rec["r"]["ok"], rec


def test_results_json_holds_every_section(smoke_run):
    """results.json: versioned schema, verdict, environment per language, dataset card, curves, weights, timing."""
    res = json.loads((smoke_run / "results.json").read_text())
    assert (res["schema"], res["version"]) == ("tailings-parity/results", 1)
    assert res["complete"] is True
    assert set(res["environment"]) == {"python", "r-rpy2", "r-rscript"}
    assert res["environment"]["r-rscript"]["r_version"], "the R worker must report its R version"
    card = res["dataset"]["card"]
    assert card["class_balance"]["all_ok_tiles"]["baseline_accuracy"] is not None
    assert len(res["dataset"]["val"]) >= 3
    for impl in ("python", "r-rpy2", "r-rscript"):
        assert len(res["metrics"][impl]) == res["config"]["epochs"]
    final = [w for w in res["weights"] if w["stage"] == "final_weights"]
    assert final and all(w["max_ulp_diff"] == 0 for w in final)
    timing = res["timing"]
    assert set(timing["ratios_vs_python"]) == {"r-rpy2", "r-rscript"}
    assert timing["per_impl"]["python"]["total"]["median"] > 0
    assert timing["peak_rss_mb"]["python"]["median"] > 0
    assert timing["harness"]["overhead_total"] is not None


def test_html_is_self_contained_with_every_plot(smoke_run):
    """report.html embeds every plot as a decodable PNG and loads nothing from elsewhere."""
    text = (smoke_run / "report.html").read_text()
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", text)
    assert len(images) >= 5, "expected curves, batch losses, weights, timing and tiles plots"
    for data in images:
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    assert not re.search(r"(src|href)=['\"](https?:|//|file:)", text)
    md = (smoke_run / "report.md").read_text()
    assert "PARITY" in md and "plots/tiles.png" in md


def test_report_command_rebuilds_without_training(smoke_run, capsys):
    """`tailings-parity report RUN` rebuilds the same verdict from the folder alone."""
    from parity.cli import main

    before = json.loads((smoke_run / "comparison.json").read_text())["verdict"]
    (smoke_run / "report.html").unlink()
    assert main(["report", str(smoke_run)]) == 0
    out = capsys.readouterr().out
    assert before in out and (smoke_run / "report.html").is_file()


@pytest.mark.heavy
def test_relative_folders_with_spaces(tmp_path, monkeypatch, capsys):
    """`run --data "my tiles" --reports-dir "my reports"` from another folder: the workers (which run in the
    project root) get absolute paths."""
    from parity import cli
    from parity.data.synthetic import make_synthetic

    make_synthetic(tmp_path / "my tiles", count=8, size=32, seed=5)
    monkeypatch.chdir(tmp_path)
    rc = cli.main(["run", "--impls", "python", "--data", "my tiles", "--reports-dir", "my reports",
                   "--set", "epochs=1", "--set", "batch_size=2"])
    out = capsys.readouterr().out
    assert rc == 0 and "worker python: done" in out, out
    run_dir = next((tmp_path / "my reports").iterdir())
    assert f"report: {run_dir / 'report.html'}" in out
    assert (run_dir / "report.html").is_file() and not (run_dir / "INCOMPLETE").exists()
