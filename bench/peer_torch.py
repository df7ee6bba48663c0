"""Times the peer PyTorch trainer's step on this machine: w86763777/pytorch-gan-collections.

  python bench/peer_torch.py --peer_dir=PATH/pytorch-gan-collections --out=peer.json
  python bench/peer_torch.py --peer_dir=... --models=sngan_res32 --compile=false,true

Its networks are imported from --peer_dir (`source/models/dcgan.py`, `source/models/sngan.py`,
`source/losses.py`) and its training step is the one of its `dcgan.py` / `sngan.py`: n_dis D
steps on a real batch and a detached fake batch, then one G step on twice the batch, Adam for
both, each optimizer stepped once a step. Real batches are drawn from a uint8 CIFAR-sized array
already on the device (its own loader reads from the CPU with 4 workers: this is its best
case). `--compile=true` wraps G and D in `torch.compile`. Reports the median steps/s of
--repeats runs of --steps steps, after --warmup untimed steps, as JSON rows.
"""

import argparse
import importlib.util
import json
import os
import statistics
import sys
import time

# The peer's CIFAR-10 configurations (configs/DCGAN_CIFAR10.txt, configs/SNGAN_CIFAR10_RES.txt).
RECIPES = {
    "dcgan": dict(module="dcgan", generator="Generator32", discriminator="Discriminator32",
                  loss="BCEWithLogits", batch_size=128, n_dis=1, z_dim=100, betas=(0.5, 0.9)),
    "sngan_res32": dict(module="sngan", generator="ResGenerator32",
                        discriminator="ResDiscriminator32", loss="Hinge", batch_size=64, n_dis=5,
                        z_dim=128, betas=(0.0, 0.9)),
}


def _parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer_dir", required=True, help="a checkout of pytorch-gan-collections")
    parser.add_argument("--models", default="dcgan,sngan_res32",
                        help=f"comma list of {', '.join(RECIPES)}")
    parser.add_argument("--compile", default="false,true", help="comma list of false/true")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--device", default="cuda", help="cuda or cpu (cpu: a dry run)")
    parser.add_argument("--out", help="JSON file of the rows")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.models.split(",")) - set(RECIPES))
    if unknown:
        parser.error(f"--models: unknown {', '.join(unknown)}; choose from {', '.join(RECIPES)}")
    for name in ("steps", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if not os.path.isfile(os.path.join(args.peer_dir, "source", "models", "sngan.py")):
        parser.error(f"--peer_dir={args.peer_dir} has no source/models/sngan.py: pass a "
                     "checkout of w86763777/pytorch-gan-collections")
    return args


def _load(peer_dir, relative):
    path = os.path.join(peer_dir, *relative.split("/"))
    spec = importlib.util.spec_from_file_location("peer_" + relative.replace("/", "_")[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def time_peer(peer_dir, name, compiled, steps, repeats, warmup, device):
    """Median steps/s of the peer's training step for recipe `name`."""
    import torch

    recipe = RECIPES[name]
    models = _load(peer_dir, f"source/models/{recipe['module']}.py")
    losses = _load(peer_dir, "source/losses.py")
    torch.manual_seed(0)
    net_g = getattr(models, recipe["generator"])(recipe["z_dim"]).to(device)
    net_d = getattr(models, recipe["discriminator"])().to(device)
    loss_fn = getattr(losses, recipe["loss"])()
    opt_g = torch.optim.Adam(net_g.parameters(), lr=2e-4, betas=recipe["betas"])
    opt_d = torch.optim.Adam(net_d.parameters(), lr=2e-4, betas=recipe["betas"])
    g, d = (torch.compile(net_g), torch.compile(net_d)) if compiled else (net_g, net_d)
    batch, z_dim = recipe["batch_size"], recipe["z_dim"]
    data = torch.randint(0, 256, (50 * batch, 3, 32, 32), dtype=torch.uint8, device=device)

    def step():
        for _ in range(recipe["n_dis"]):
            with torch.no_grad():
                fake = g(torch.randn(batch, z_dim, device=device)).detach()
            index = torch.randint(0, data.shape[0], (batch,), device=device)
            real = data[index].float() / 127.5 - 1
            loss = loss_fn(d(real), d(fake))
            opt_d.zero_grad()
            loss.backward()
            opt_d.step()
        loss = loss_fn(d(g(torch.randn(2 * batch, z_dim, device=device))))
        opt_g.zero_grad()
        loss.backward()
        opt_g.step()

    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    for _ in range(warmup):
        step()
    sync()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        rates.append(steps / (time.perf_counter() - start))
    return {"model": name, "compile": compiled, "batch_size": batch, "n_dis": recipe["n_dis"],
            "steps_per_s": statistics.median(rates), "device": device,
            "torch": torch.__version__}


def main(argv=None):
    args = _parse(argv if argv is not None else sys.argv[1:])
    try:
        import torch
    except ImportError:
        print("peer timing skipped: PyTorch is not installed here", flush=True)
        return 0
    device = args.device
    if device == "cuda" and not torch.cuda.is_available():
        print("error: --device=cuda but PyTorch sees no GPU; pass --device=cpu for a dry run",
              file=sys.stderr)
        return 2
    rows = []
    for name in args.models.split(","):
        for flag in args.compile.split(","):
            compiled = flag.strip().lower() == "true"
            try:
                row = time_peer(args.peer_dir, name, compiled, args.steps, args.repeats,
                                args.warmup, device)
            except Exception as error:  # a failed torch.compile is a result, not a crash
                row = {"model": name, "compile": compiled, "error": f"{type(error).__name__}: "
                       f"{str(error).splitlines()[0] if str(error) else ''}"}
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1)
    return 0 if all("error" not in row or row["compile"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
