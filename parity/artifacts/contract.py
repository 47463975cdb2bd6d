"""The worker-folder contract: every file a worker folder holds, who writes it, whether it is required, and what
it holds. Declared here, once; the table in ``parity/FORMATS.md`` ("Worker output") is ``markdown_table()``'s
output, checked by ``tests/test_contract.py``. The spawner refuses a worker that exits 0 without a required
``worker`` file; the comparison fails a stage whose required file is missing (each required file is the evidence
of one stage of ``parity/compare/stages.py``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Artifact:
    """One row of the contract: file ``names`` (a pattern where one holds ``<...>``), the ``writer`` (``worker``,
    ``spawner`` or ``runner``), whether they are ``required``, and their ``content``."""

    names: tuple[str, ...]
    writer: str
    required: bool
    content: str
    required_note: str = ""


ARTIFACTS: tuple[Artifact, ...] = (
    Artifact(('status.json',), 'spawner', True,
             '`{"impl", "ok": bool, "error": str or null, "phase": last phase reached, "returncode", "stderr_tail", "wall_s", "output_bytes": what the worker printed, "log_truncated": bool, "log_error": str or null}`; written by the harness\'s spawner, also when the worker crashed'),
    Artifact(('worker_output.log',), 'spawner', True,
             'everything the worker process printed (stdout and stderr), written by the spawner, up to 32 MiB: past that a last line says how much more came (`log_truncated` in status.json); the spawner holds only the last 40 lines, each cut at 2000 characters, so a worker that prints without end does not grow the harness'),
    Artifact(('architecture.json',), 'worker', True,
             '`{"layers": [{"name", "class_name", "config": {normalised}, "inputs": [names of the layers it takes, in argument order], "params": int}], "total_params", "trainable_params"}`: every operation of the graph (layers and `keras.ops` calls) in topological order (`model.operations`)'),
    Artifact(('compiled.json',), 'worker', True,
             'what `compile_model` set: `{"optimizer": {"class_name", "config": get_config() without "name"}, "loss": {"class_name", "config"}` (a loss function, `bce_dice` or a pair\'s `loss`: `{"class_name": "function", "config": {"function": its name}}`), `"jit_compile", "run_eagerly", "steps_per_execution"}`; written in phase `build`, from the same `build_model` and `compile_model` that training calls'),
    Artifact(('weights_initial.npz', 'weights_final.npz'), 'worker', True,
             'one array per variable, key `<layer name>/<variable name>` (e.g. `enc1_conv1/kernel`), in model order'),
    Artifact(('forward_fixed.npy',), 'worker', True,
             'model output (N, H, W, 1) on manifest `fixed_batch` of val, with the initial weights'),
    Artifact(('forward_layers.json', 'forward_layers.npz'), 'worker', True,
             'every operation of the graph after its input, in topological order, on the fixed batch as one batch with the initial weights (inference mode): `{"full_max", "sample", "layers": [{"index": place in `model.operations`, "key", "name", "class_name", "shape", "sha256": of its float32 C-order output, "stored": "full" or "sample"}]}`; the .npz holds under `key` the whole output when it has at most `full_max` values ([rules] `layer_full_max`), else `sample` values ([rules] `layer_sample`) at `numpy.linspace(0, size - 1, sample)` positions of the C-order values'),
    Artifact(('batch_losses.npy',), 'worker', True,
             "float32 (epochs, batches): the loss of each batch's training step (Keras's `train_step`, what `train_on_batch` runs: `make_train_step`)"),
    Artifact(('metrics.json',), 'worker', True,
             '`{"epochs": [{"epoch": 1, "train": {"loss"}, "val": {...}}], "final": {"train": {...}, "val": {...}}}`; a full block is `{loss, accuracy, iou, f1, precision, recall, baseline_accuracy, tp, fp, fn, tn}`. Lean metrics, the same in both twins: after every epoch one forward pass over the val tiles (Keras\'s `predict_step` in `batch_size` batches, what `model.predict` runs: `make_predict`), its loss the compiled loss of those predictions at once (`model.compute_loss`: the config\'s loss, binary cross-entropy or BCE + Dice, plus the L2 terms), metrics counted from them; the epoch\'s train loss is the mean of its batch losses (summed left to right in float64); the train split is counted once, with the final weights, in the evaluation phase (`final.train`); `final.val` is the last epoch\'s'),
    Artifact(('predictions_val.npy',), 'worker', True,
             'float32 (N_val, H, W): predicted probabilities of the val tiles in manifest order, final weights'),
    Artifact(('input_hashes.json',), 'worker', True,
             '`{"<tile id>": {"image": sha256 of float32 C-order bytes, "mask": ...}}` as this language read them'),
    Artifact(('inputs_val.npz',), 'worker', True,
             '`images` (N_val, H, W, C) and `masks` (N_val, H, W) as this language read them'),
    Artifact(('model.keras',), 'worker', True,
             'the trained model'),
    Artifact(('timings.json',), 'worker', True,
             'seconds: `{"start_to_ready" (process start, libraries loaded (TensorFlow, and the reader of the run\'s encoding: rasterio or Pillow, terra or jpeg), threads and determinism set), "data" (file hashes checked, tiles read into float32 NumPy arrays, input hashes), "handover" (R arrays to float32 NumPy when train() is given R arrays; ~0 in both workers), "build", "epochs": [..] (training batches), "epoch_metrics": [..] (the val forward pass and its metrics), "evaluation" (final predictions saved, train split counted), "save", "total"}`'),
    Artifact(('memory.json',), 'worker', True,
             '`{"peak_rss_mb"}` (VmHWM of the worker process)'),
    Artifact(('environment.json',), 'worker', True,
             'versions seen from this worker\'s language: R, reticulate, rpy2, Python, TensorFlow, Keras, NumPy; threads (`threads_intra`, `threads_inter` as set, `threads_setting` as configured, e.g. `["auto", "auto"]`, and `available_cores`: CPU affinity capped by a cgroup quota); determinism flags; environment variables that change how the process runs (`env`); devices; platform'),
    Artifact(('progress.log',), 'worker', False,
             'one line per phase/batch/epoch, flushed; the first is `phase start pid N`, then `phase data`, `phase build`, `phase train`, ..., `epoch 1/2 batch 3/4 loss 0.6931 elapsed 1.2s`, ..., `phase done`',
             required_note='progress for people'),
    Artifact(('batch_order.json',), 'worker', True,
             '`{"manifest_sha256", "batches": [[[tile ids fed], ...], ...], "samples": [[[[image, mask], ...], ...], ...]}`: what the training step got, per epoch and batch: the tile ids and, per row, the first 16 hex digits of the sha256 of the image and the mask as fed (after crop and augmentation)'),
    Artifact(('crossload.json', 'crossload_<loader>.npy'), 'runner', True,
             'written by the runner, not the worker: `{"self"|"python"|"r": {"ok", "error", "file"}}`, the fixed batch predicted by `model.keras` loaded in each language (`self`: the worker\'s own `predictions_val` rows)'),
)


def required_files(writer: str = "worker") -> tuple[str, ...]:
    """Names of the required files written by ``writer`` (``worker``, ``spawner`` or ``runner``)."""
    return tuple(n for a in ARTIFACTS if a.required and a.writer == writer for n in a.names if "<" not in n)


def is_required(name: str) -> bool:
    """Whether the contract lists ``name`` as required (a file it does not list is not)."""
    return any(name in a.names and a.required for a in ARTIFACTS)


def markdown_table() -> str:
    """The contract as the Markdown table of FORMATS.md's "Worker output" section."""
    lines = ["| file | written by | required | content |", "|---|---|---|---|"]
    for a in ARTIFACTS:
        required = ("yes" if a.required else "no") + (f": {a.required_note}" if a.required_note else "")
        lines.append(f"| {', '.join(f'`{n}`' for n in a.names)} | {a.writer} | {required} | {a.content} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
