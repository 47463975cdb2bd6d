"""Hardening (issue 9): what a new user gets wrong, and faults, each made on the spot by code.

1. Config mistakes (``--set tile_size=90``, ``epochs=-1``, ``batch_size=0``, ...) stop ``run`` and ``worker``
   with one line naming the key, the value and the rule, exit 2, nothing written; the workers and R's
   ``load_config`` apply the same rules (``[schema]`` of parity/presets.toml).
2. Every file of the tile folders is a tile or is named: a stray file is a warning (an error with ``--strict``),
   two files of one tile id an error naming both; a run says which tiles it leaves out and why.
3. No verdict without evidence: a missing required file fails its stage; a changed data file is refused by the
   worker, by name; the architecture stage names a swapped Concatenate and another learning rate
   (parity/mistakes/mistakes.toml runs them as R twins).
4. Faults: the harness killed with SIGKILL, a full disk, a worker that prints without end.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from parity.cli import main as cli_main
from parity.env import PROJECT_ROOT, R_IMPL_DIR

# A tiny run: 8 tiles of 32 x 32, one epoch (the failure handling is measured, not training).
TINY = ["synthetic_count=8", "synthetic_size=32", "tile_size=32", "epochs=1", "batch_size=2"]


def _cli(argv, capsys) -> tuple[int, str, str]:
    rc = cli_main(argv)
    cap = capsys.readouterr()
    assert "Traceback" not in cap.out + cap.err
    return rc, cap.out, cap.err


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip()]


def _tiles(folder: Path, count: int = 8, broken: str | None = None) -> Path:
    """Synthetic tiles (both encodings) in ``folder``; ``broken``: a kind of parity/data/fixtures.py for tile 3."""
    from parity.data.fixtures import make_fixture
    from parity.data.synthetic import make_synthetic

    if broken:
        return make_fixture(broken, folder, count=count, size=32)
    make_synthetic(folder, count=count, size=32, seed=5)
    return folder


def _python(code: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=timeout)


# ---------------------------------------------------------------------------------------------- 1. config

@pytest.mark.parametrize("overrides, line", [
    (["tile_size=90"], "error: config key tile_size = 90: must be a multiple of 2^depth = 4 (depth = 2)"),
    (["epochs=-1"], "error: config key epochs = -1: must be >= 1"),
    (["batch_size=0"], "error: config key batch_size = 0: must be >= 1"),
    (["batch_size=100"], "error: config key batch_size = 100: must be <= the training tiles, 17 (split_train 0.7 "
                         "and split_val 0.2 of 24 usable tiles)"),
    (["learning_rate=0"], "error: config key learning_rate = 0.0: must be > 0.0"),
    (["learning_rate=nan"], "error: config key learning_rate = nan: must be a finite number"),
    (["threads_intra=0"], "error: config key threads_intra = 0: must be >= 1"),
    (["threads_inter=two"], "error: config key threads_inter = 'two': must be an integer or 'auto'"),
    (["split_train=0.9", "split_val=0.2"], "error: config key split_val = 0.2: split_train + split_val must be "
                                           "<= 1.0 (split_train = 0.9)"),
    (["split_val=0.01"], "error: config key split_val = 0.01: leaves 0 validation tiles, needs at least 1 "
                         "(split_train 0.7 and split_val 0.01 of 24 usable tiles)"),
    (["variant=unet++"], "error: config key variant = 'unet++': must be one of 'paper-r', 'paper-python'"),
    (["optimizer=adamw"], "error: config key optimizer = 'adamw': must be one of 'rmsprop', 'adam', 'sgd'"),
    (["encoding=png"], "error: config key encoding = 'png': must be one of 'geotiff', 'jpeg'"),
    (["mode=fast"], "error: config key mode = 'fast': must be one of 'strict', 'tolerance', 'statistical'"),
    (["input_channels=4"], "error: config key input_channels = 4: must be one of 1, 3"),
    (["seed=-3"], "error: config key seed = -3: must be >= 0"),
    (["data=/no/such/tiles"], "error: config key data = '/no/such/tiles': must be 'synthetic' or an existing "
                              "folder (no folder /no/such/tiles); pass --data DIR, set TAILINGS_DATA, or use the "
                              "smoke preset"),
])
def test_a_config_mistake_is_one_line_exit_2_and_writes_nothing(overrides, line, capsys, tmp_path):
    argv = ["run", "--reports-dir", str(tmp_path / "reports")]
    for item in overrides:
        argv += ["--set", item]
    rc, out, err = _cli(argv, capsys)
    assert (rc, _error_lines(err)) == (2, [line])
    assert "DIVERGED" not in out and not (tmp_path / "reports").exists()


def test_relations_with_the_data_are_checked_on_the_counted_tiles(tmp_path, capsys):
    """A real folder: 8 tiles of which tile 3 is broken leave 7, so 5 training tiles at split_train 0.7."""
    data = _tiles(tmp_path / "tiles", broken="narrow_geotiff")
    rc, _, err = _cli(["run", "--data", str(data), "--set", "batch_size=6", "--set", "tile_size=32",
                       "--reports-dir", str(tmp_path / "reports")], capsys)
    assert (rc, _error_lines(err)) == (2, ["error: config key batch_size = 6: must be <= the training tiles, 5 "
                                           "(split_train 0.7 and split_val 0.2 of 7 usable tiles)"])
    assert not (tmp_path / "reports").exists()


def test_statistical_seeds_are_checked_too(tmp_path, capsys):
    rc, _, err = _cli(["run", "--mode", "statistical", "--seeds", "5,-1", "--reports-dir", str(tmp_path)], capsys)
    assert (rc, _error_lines(err)) == (2, ["error: config key seed = -1: must be >= 0"])
    assert not any(tmp_path.iterdir())


def test_threads_take_an_integer_or_auto_and_every_key_has_a_rule():
    import tomllib

    from python_impl.config import PRESETS_PATH, load_config

    assert load_config("smoke", ["threads_intra=2", "threads_inter=auto"])["threads_intra"] == 2
    assert load_config("smoke", ["threads_intra=auto"])["threads_intra"] == "auto"
    doc = tomllib.loads(PRESETS_PATH.read_text())
    known = {"type", "auto", "choices", "min", "max", "above", "below", "multiple_of", "sum_max", "leaves",
             "folder_or", "at_most"}
    assert set(doc["schema"]) == set(doc["defaults"]), "every key of [defaults] needs its rule in [schema]"
    for key, rule in doc["schema"].items():
        assert set(rule) <= known and rule["type"] in ("int", "float", "number", "bool", "string"), (key, rule)


def _worker_inputs(folder: Path, overrides: list[str]) -> tuple[Path, Path, Path]:
    """config.json and manifest.json of a tiny run on synthetic tiles in ``folder``; returns them and the tiles."""
    from parity.data.manifest import make_manifest, write_manifest
    from python_impl.config import load_config, write_config

    data = _tiles(folder / "data")
    config = load_config("smoke", TINY + overrides)
    config["data"] = str(data)
    write_config(config, folder / "config.json")
    write_manifest(make_manifest(config, data, list(range(8))), folder / "manifest.json")
    return folder / "config.json", folder / "manifest.json", data


def test_worker_command_checks_the_config_it_reads(tmp_path, capsys):
    """`tailings-parity worker` with a hand-edited config.json: one line, exit 2, no output folder."""
    config_path, manifest_path, _ = _worker_inputs(tmp_path, [])
    config = json.loads(config_path.read_text())
    config["epochs"] = -1
    config_path.write_text(json.dumps(config))
    out = tmp_path / "out"
    rc, _, err = _cli(["worker", "--impl", "python", "--config", str(config_path), "--manifest",
                       str(manifest_path), "--out", str(out)], capsys)
    assert (rc, _error_lines(err)) == (2, ["error: config key epochs = -1: must be >= 1"])
    assert not out.exists()
    config["epochs"], config["batch_size"] = 1, 9  # 8 tiles leave 6 for training
    config_path.write_text(json.dumps(config))
    rc, _, err = _cli(["worker", "--impl", "r-rscript", "--config", str(config_path), "--manifest",
                       str(manifest_path), "--out", str(out)], capsys)
    assert (rc, _error_lines(err)) == (2, ["error: config key batch_size = 9: must be <= the training tiles, 6 "
                                           "(split_train 0.7 and split_val 0.2 of 8 usable tiles)"])
    assert not out.exists()


@pytest.mark.heavy
def test_r_load_config_applies_the_same_rules_word_for_word(tmp_path):
    """R's load_config / check_config (r_impl/R/config.R), called directly, refuse what Python's refuse, with the
    same message; R is started without TensorFlow (config.R needs RcppTOML only)."""
    from parity.env import run_rscript
    from python_impl.config import ConfigError, check_config, load_config

    cases = [["tile_size=90"], ["epochs=-1"], ["batch_size=0"], ["learning_rate=-0.0001"], ["threads_intra=0"],
             ["threads_inter=auto"], ["split_train=1"], ["split_train=0.9", "split_val=0.2"], ["l2=-1e-05"],
             ["variant=paper-julia"], ["epochs=many"], ["deterministic=maybe"], ["depth=3", "tile_size=100"],
             ["worker_timeout_s=0"], ["crop_size=128"], ["crop_size=30"], ["loss=dice"], ["lr_schedule=step"],
             ["crop_size=32"]]
    counted = [(24, ["batch_size=100"]), (24, ["split_train=0.01"]), (3, ["batch_size=4"]), (24, [])]

    def python_says(overrides, n_tiles=None):
        try:
            check_config(load_config("smoke", overrides), n_tiles)
            return "accepted"
        except ConfigError as exc:
            return str(exc)

    # R's side is an R file (r_impl/tests/config_cases.R): one line per case, as python_says.
    cases_json = tmp_path / "cases.json"
    cases_json.write_text(json.dumps([[n, o] for n, o in [(None, c) for c in cases] + counted]))
    result = run_rscript(R_IMPL_DIR / "tests" / "config_cases.R", [cases_json], timeout_s=120)
    assert result.returncode == 0, result.stderr[-2000:]
    expected = [python_says(c) for c in cases] + [python_says(o, n) for n, o in counted]
    assert result.stdout.splitlines() == expected
    # accepted: threads auto, a crop of 32 from 64, and 24 tiles
    assert [e for e in expected if not e.startswith("config key ")] == ["accepted"] * 3
    assert "config key crop_size = 128: must be <= tile_size (tile_size = 64)" in expected


# ---------------------------------------------------------------------------------------------- 2. files

def test_data_check_names_a_stray_file_and_strict_makes_it_an_error(tmp_path, capsys):
    data = _tiles(tmp_path / "tiles", count=4)
    shutil.copy(data / "img" / "img_1.jpeg", data / "img" / "img_a.jpeg")
    rc, out, err = _cli(["data", "check", str(data)], capsys)
    assert rc == 0
    assert "file img/img_a.jpeg" in out and "STRAY not a tile file: tile files in img/ are named img_N.jpeg" in out
    assert _error_lines(err) == [f"warning: 1 stray file(s) in {data}, not read by any run: img/img_a.jpeg "
                                 "(--strict makes this an error)"]
    rc, _, err = _cli(["data", "check", str(data), "--strict"], capsys)
    assert rc == 1 and _error_lines(err) == [
        f"error: stray file img/img_a.jpeg in {data}: not a tile file: tile files in img/ are named img_N.jpeg (N "
        "the tile id); the readers skip it; fix: rename it as a tile, move it out of the tile folders, or run "
        "without --strict"]


def test_two_files_of_one_tile_id_are_an_error_naming_both(tmp_path, capsys):
    data = _tiles(tmp_path / "tiles", count=6)
    shutil.copy(data / "img" / "img_5.jpeg", data / "img" / "img_05.jpeg")
    for argv in (["data", "check", str(data)], ["data", "check", str(data), "--json"]):
        rc, _, err = _cli(argv, capsys)
        assert rc == 1 and (
            f"error: duplicate tile 5 in {data}: img/img_05.jpeg and img/img_5.jpeg both map to tile 5: the readers "
            "open img/img_5.jpeg; fix: keep one, remove or rename the other(s)") in _error_lines(err)
    # A run refuses the folder before it writes anything (the GeoTIFFs are fine: only the JPEG run is refused).
    rc, _, err = _cli(["run", "--data", str(data), "--set", "encoding=jpeg", "--set", "tile_size=32",
                       "--reports-dir", str(tmp_path / "reports")], capsys)
    assert rc == 1 and "duplicate tile 5: img/img_05.jpeg and img/img_5.jpeg" in err and "nothing was written" in err
    assert not (tmp_path / "reports").exists()


def test_a_lone_file_with_a_leading_zero_is_named(tmp_path):
    from parity.data.check import account_files

    data = _tiles(tmp_path / "tiles", count=4)
    (data / "mask_tiff" / "mask_2.tif").rename(data / "mask_tiff" / "mask_02.tif")
    assert account_files(data, "geotiff")["stray"] == [
        {"file": "mask_tiff/mask_02.tif", "reason": "maps to tile 2, but the readers open mask_tiff/mask_2.tif: "
                                                    "rename it"}]


# ---------------------------------------------------------------------------------------------- 3. evidence

def test_every_required_file_is_the_evidence_of_a_stage():
    from parity.artifacts.contract import required_files
    from parity.compare.stages import STAGE_FILES

    staged = {name for names in STAGE_FILES.values() for name in names}
    assert set(required_files("worker")) | set(required_files("runner")) <= staged
    assert "compiled.json" in STAGE_FILES["architecture"] and "batch_order.json" in STAGE_FILES["batch_order"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> dict:
    """`run --impls python` on 8 tiles of which tile 3 is broken and one stray file; its folder and output."""
    root = tmp_path_factory.mktemp("hardening-run")
    data = _tiles(root / "tiles", broken="narrow_geotiff")
    (data / "img_tiff" / "notes.txt").write_text("not a tile\n")
    argv = [sys.executable, "-m", "parity", "run", "--impls", "python", "--data", str(data),
            "--reports-dir", str(root / "reports")] + [a for s in TINY for a in ("--set", s)]
    proc = subprocess.run(argv, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (run_dir,) = list((root / "reports").iterdir())
    return {"dir": run_dir, "stdout": proc.stdout, "data": data, "root": root}


@pytest.mark.heavy
def test_a_run_says_which_tiles_it_leaves_out_and_why(tiny_run):
    out = tiny_run["stdout"]
    assert "7 tiles used, 1 left out" in out
    assert ("  left out: tile 3 (img_tiff/img_3.tif): image 448 x 48, mask 32 x 32: sizes differ; image 448 x 48, "
            "expected 32 x 32") in out, out
    assert (f"warning: stray file img_tiff/notes.txt in {tiny_run['data']}: not a tile file: tile files in "
            "img_tiff/ are named img_N.tif (N the tile id); the readers skip it") in out
    card = json.loads((tiny_run["dir"] / "dataset_card.json").read_text())
    assert card["excluded"].keys() == {"3"} and [s["file"] for s in card["files"]["stray"]] == ["img_tiff/notes.txt"]


@pytest.mark.heavy
@pytest.mark.parametrize("mode", ["strict", "tolerance"])
def test_a_missing_required_file_fails_its_stage(tiny_run, tmp_path, mode):
    """Delete each required file from a copy of a finished worker folder: its stage is "missing", never a pass."""
    from parity.artifacts.contract import required_files
    from parity.compare.stages import STAGE_FILES, WorkerFolder, compare_pair

    source = tiny_run["dir"] / "workers" / "python"
    ref = WorkerFolder(source, "python")
    whole = compare_pair(ref, WorkerFolder(source, "copy"), mode)
    assert whole["ok"], whole["first_divergence"]
    stage_of = {name: stage for stage, names in STAGE_FILES.items() for name in names}
    for name in required_files("worker") + required_files("runner"):
        copy = tmp_path / f"{mode}-{name}"
        shutil.copytree(source, copy)
        (copy / name).unlink()
        pair = compare_pair(ref, WorkerFolder(copy, "copy"), mode)
        verdicts = {s["stage"]: s for s in pair["stages"]}
        stage = verdicts[stage_of[name]]
        assert not pair["ok"] and stage["verdict"] == "missing" and name in stage["summary"], (name, stage)
        assert pair["first_divergence"]["stage"] == stage_of[name]


@pytest.mark.heavy
def test_the_architecture_stage_names_the_wiring_and_the_optimizer(tiny_run, tmp_path):
    """Records edited as a twin with a swapped Concatenate or another learning rate would write them (the real R
    twins with those mistakes run in parity/test_mistakes.py)."""
    from parity.compare.stages import WorkerFolder, compare_pair

    source = tiny_run["dir"] / "workers" / "python"
    ref = WorkerFolder(source, "python")
    swapped = tmp_path / "swapped"
    shutil.copytree(source, swapped)
    arch = json.loads((swapped / "architecture.json").read_text())
    layer = next(x for x in arch["layers"] if x["name"] == "dec1_concat")
    layer["inputs"] = layer["inputs"][::-1]
    (swapped / "architecture.json").write_text(json.dumps(arch))
    fd = compare_pair(ref, WorkerFolder(swapped, "r"), "strict")["first_divergence"]
    assert (fd["stage"], fd["summary"]) == ("architecture", "layer dec1_concat: inputs ['enc2_conv2', 'dec1_up'] "
                                                            "vs ['dec1_up', 'enc2_conv2']")
    slower = tmp_path / "slower"
    shutil.copytree(source, slower)
    compiled = json.loads((slower / "compiled.json").read_text())
    optimizer, rate = compiled["optimizer"]["class_name"], compiled["optimizer"]["config"]["learning_rate"]
    compiled["optimizer"]["config"]["learning_rate"] = rate / 10
    (slower / "compiled.json").write_text(json.dumps(compiled))
    fd = compare_pair(ref, WorkerFolder(slower, "r"), "tolerance")["first_divergence"]
    assert (fd["stage"], fd["summary"]) == ("architecture", f"optimizer {optimizer} learning_rate {rate:.6g} vs "
                                                            f"{rate / 10:.6g}")


@pytest.mark.heavy
@pytest.mark.parametrize("impl", ["python", "r-rscript"])
def test_a_tile_changed_after_the_manifest_is_refused_by_name(tmp_path, impl):
    from parity.run.workers import spawn_worker

    config_path, manifest_path, data = _worker_inputs(tmp_path, [])
    tile = json.loads(manifest_path.read_text())["train"][0]
    changed = data / "mask_tiff" / f"mask_{tile}.tif"
    changed.write_bytes(changed.read_bytes() + b"\0")  # one byte more: the same pixels, another file
    result = spawn_worker(impl, config_path, manifest_path, tmp_path / "out", timeout_s=300)
    assert not result.ok and result.phase == "data"
    assert f"1 data file(s) changed or missing since the manifest was written: mask_tiff/mask_{tile}.tif" in \
        result.error, result.error
    assert not (tmp_path / "out" / "weights_initial.npz").exists()


# ---------------------------------------------------------------------------------------------- 4. faults

from parity.testing import pid_alive as _pid_alive  # noqa: E402


@pytest.mark.heavy
@pytest.mark.slow
def test_harness_killed_mid_run_leaves_incomplete_and_the_next_run_is_unaffected(tmp_path, capsys):
    data = _tiles(tmp_path / "tiles")
    reports = tmp_path / "reports"
    argv = [sys.executable, "-u", "-m", "parity", "run", "--verbose", "--impls", "python", "--data", str(data),
            "--reports-dir", str(reports)] + [a for s in TINY[2:] for a in ("--set", s)]
    harness = subprocess.Popen(argv + ["--set", "epochs=50"], cwd=PROJECT_ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    worker_pid = None
    try:
        for line in harness.stdout:
            if "phase start pid" in line:
                worker_pid = int(line.split()[-1])
            if "phase train" in line:
                break
        assert worker_pid, "the worker never started"
        harness.send_signal(signal.SIGKILL)
        harness.wait(timeout=30)
        deadline = time.time() + 15
        while _pid_alive(worker_pid) and time.time() < deadline:
            time.sleep(0.2)
        assert not _pid_alive(worker_pid), "the worker trained on after its harness was killed"
    finally:
        harness.kill()
        if worker_pid and _pid_alive(worker_pid):
            os.kill(worker_pid, signal.SIGKILL)
    (killed,) = list(reports.iterdir())
    marker = (killed / "INCOMPLETE").read_text()
    assert marker.startswith("running since ") and f"(harness pid {harness.pid})" in marker
    rc, out, err = _cli(["report", str(killed)], capsys)
    assert rc == 1 and f"error: {killed} is marked INCOMPLETE (running since" in err
    assert out.startswith("INCOMPLETE run, no verdict; what its files show: ")
    # The next run: its own folder, finished, the killed one left as it was.
    proc = subprocess.run(argv, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and "NO COMPARISON: only python ran" in proc.stdout, proc.stdout + proc.stderr
    (second,) = [p for p in reports.iterdir() if p != killed]
    assert not (second / "INCOMPLETE").exists() and (second / "report.html").is_file()
    assert (killed / "INCOMPLETE").read_text() == marker


@pytest.fixture()
def small_disk(tmp_path):
    """A 160 KiB tmpfs (root only; skipped where mount is not permitted); unmounted afterwards."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}); needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


@pytest.mark.heavy
def test_a_full_disk_ends_with_the_folder_named_and_incomplete(tmp_path, small_disk):
    data = _tiles(tmp_path / "tiles")
    argv = [sys.executable, "-m", "parity", "run", "--impls", "python", "--data", str(data),
            "--reports-dir", str(small_disk)] + [a for s in TINY[2:] for a in ("--set", s)]
    proc = subprocess.run(argv, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
    (run_dir,) = list(small_disk.iterdir())
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 1 and len(errors) == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert errors[0].startswith(f"error: the run stopped: {run_dir}: no space left on the device")
    assert "fix: free space there or pass --reports-dir on a disk with room" in errors[0]
    assert "(its folder is marked INCOMPLETE" in proc.stderr and "Traceback" not in proc.stderr
    assert (run_dir / "INCOMPLETE").is_file() and not (run_dir / "report.html").exists()


@pytest.mark.heavy
@pytest.mark.slow
def test_a_worker_that_prints_without_end_does_not_grow_the_harness(tmp_path):
    """An R twin that prints 200 MB without a newline, then hangs: the harness's peak memory stays flat, the
    log stops at its cap and says so, status.json keeps a short tail."""
    config_path, manifest_path, _ = _worker_inputs(tmp_path, [])
    r_dir = tmp_path / "R"
    shutil.copytree(R_IMPL_DIR / "R", r_dir)
    worker = r_dir / "worker.R"
    head = "run_worker <- function(config_path, manifest_path, out_dir, launched_at = NULL) {\n"
    assert worker.read_text().count(head) == 1
    worker.write_text(worker.read_text().replace(
        head, head + '  for (k in 1:2000) cat(strrep("x", 100000L))\n  Sys.sleep(600)\n'))
    out = tmp_path / "out"
    probe = _python(textwrap.dedent(f"""
        import json, resource
        from parity.run.workers import spawn_worker
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        res = spawn_worker("r-rscript", {str(config_path)!r}, {str(manifest_path)!r}, {str(out)!r},
                           timeout_s=45, r_dir={str(r_dir)!r}, log_max_bytes=1_000_000)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({{"grew_kb": after - before, "error": res.error}}))
    """), timeout=300)
    assert probe.returncode == 0, probe.stderr[-3000:]
    seen = json.loads(probe.stdout.splitlines()[-1])
    status = json.loads((out / "status.json").read_text())
    assert status["output_bytes"] >= 200_000_000 and status["log_truncated"] is True, status["output_bytes"]
    assert "timed out after 45 s" in seen["error"]
    assert seen["grew_kb"] < 40_000, f"the harness grew by {seen['grew_kb']} KiB"
    log = (out / "worker_output.log").read_bytes()
    assert 1_000_000 - 100_000 <= len(log) <= 1_001_000
    assert re.search(rb"\[worker_output\.log truncated at 1000000 bytes: the worker printed \d+ bytes", log)
    assert len(status["stderr_tail"]) < 40 * 2100


def test_every_preset_passes_its_own_rules():
    """Each preset of parity/presets.toml resolves to a config that check_config accepts (tailings: a crop that
    fits its tiles, a loss and a schedule the twins know)."""
    from python_impl.config import check_config, list_presets, load_config

    presets = list_presets()
    assert {"smoke", "ci", "tailings", "paper-r", "paper-python"} <= set(presets)
    for preset in presets:
        config = check_config(load_config(preset))
        assert config["crop_size"] <= config["tile_size"], preset
    tailings = load_config("tailings")
    assert (tailings["crop_size"], tailings["loss"], tailings["lr_schedule"]) == (224, "bce_dice", "cosine")
