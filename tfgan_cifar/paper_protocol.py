"""evaluate.py --protocol=paper: FID the way published CIFAR-10 results measure it.

The standard network (InceptionV3 of 2015-12-05), 50,000 generated images against the 50,000
training images, on the run's best and final generators. The exported generator is the EMA one
whenever training kept an average (--ema_decay), so that is what is scored. Training-time
evaluation picks the best model on the test split, so scoring it on the training split does not
flatter it.
"""

import dataclasses
import json
import os

from tfgan_cifar import export
from tfgan_cifar.atomic import write_text
from tfgan_cifar.config import TrainConfig
from tfgan_cifar.errors import UserError
from tfgan_cifar.metric_schema import fid_line
from tfgan_cifar.run_dir import RunDir, published_best

PAPER = {"fid_network": "standard", "fid_reference": "train", "fid_samples": 50000}


def settings(options):
    """`options` with the paper protocol's FID settings. --fid_samples keeps a value given on
    the command line (a quicker, smaller check, named as such in every output)."""
    default_samples = TrainConfig.__dataclass_fields__["fid_samples"].default
    for name in ("fid_network", "fid_reference"):
        value = getattr(options, name)
        if value not in (None, PAPER[name], TrainConfig.__dataclass_fields__[name].default):
            raise UserError(f"--protocol=paper uses --{name}={PAPER[name]}: leave --{name}="
                            f"{value} out, or leave --protocol out")
    if options.inception_weights:
        raise UserError("--protocol=paper uses the standard FID network, not Keras's "
                        "InceptionV3: leave --inception_weights out")
    samples = PAPER["fid_samples"] if options.fid_samples == default_samples \
        else options.fid_samples
    return dataclasses.replace(options, fid_network="standard", fid_reference="train",
                               fid_samples=samples, fid=True, protocol=None)


def generators(options):
    """[(name, export path)] to score: --saved_model alone, else the run's best and final
    exports (the published best model when the run has no best export)."""
    if options.saved_model:
        return [("saved_model", options.saved_model)]
    run = RunDir(options.run_dir or os.path.join("logs", options.model))
    found = []
    for kind in ("best", "final"):
        path = run.exported(kind)
        if path is None and kind == "best" and export.exists(
                published_best(options.save_dir, options.model)):
            path = published_best(options.save_dir, options.model)
        if path is not None:
            found.append((kind, path))
    if not found:
        raise UserError(f"--protocol=paper found no best or final export in {run.path}: pass "
                        "--run_dir=RUN_DIR (a train.py --workdir) or --saved_model=PATH")
    return found


def run(options, evaluate):
    """Scores each generator of `generators(options)` with `evaluate(options)` (evaluate.py's
    run) under the paper protocol; writes <output_dir>/<MODEL>/paper_protocol.json and returns
    {name: FID result}."""
    paper = settings(options)
    results = {}
    for name, path in generators(options):
        print(f"paper protocol ({name}): {paper.fid_samples} samples of {path} against the "
              "training images, standard FID network", flush=True)
        out_dir = os.path.join(options.output_dir, f"paper_{name}")
        outputs = evaluate(dataclasses.replace(paper, saved_model=path, output_dir=out_dir))
        info = export.read_record(path, path)
        results[name] = {"saved_model": path, "step": info.get("step"),
                         "ema": bool((info.get("config") or {}).get("ema_decay")),
                         "paper_samples": paper.fid_samples == PAPER["fid_samples"],
                         **outputs["metrics"]}
    target = os.path.join(options.output_dir, "paper_protocol.json")
    os.makedirs(options.output_dir, exist_ok=True)
    write_text(target, json.dumps(results, indent=2, sort_keys=True) + "\n")
    for name, result in results.items():
        short = "" if result["paper_samples"] else " (fewer samples than the paper's 50,000)"
        print(f"paper protocol, {name} generator (step {result['step']}"
              f"{', EMA' if result['ema'] else ''}): {fid_line(result, 'generated images')}"
              f"{short}", flush=True)
    print(f"wrote {target}", flush=True)
    return results
