"""DANN training throughput on the digits LeNet: transferkit beside skada.deep and pytorch-adapt.

Samples per second of DANN training (Ganin et al., JMLR 2016) with the same network, the same
batches and the same optimizer in each library, measured in one run; the script prints a table
(library, samples/s, parameter count, our ratio = ours / theirs).

Peers are never dependencies of transferkit: they live in the gitignored peers virtualenv, with the
same CPU build of torch as transferkit's own venv (the requirements file pins the local wheel,
never a CUDA one):

    python3 -m venv benchmarks/.peers-venv
    benchmarks/.peers-venv/bin/pip install -c constraints.txt -r benchmarks/requirements-throughput.txt
    benchmarks/.peers-venv/bin/pip install -c constraints.txt --no-deps pytorch-adapt==0.0.83 pytorch-metric-learning==1.6.3

(pytorch-adapt and pytorch-metric-learning declare ``torchvision``, which cannot be installed beside
this torch: they are installed without their dependencies, the others being listed in
requirements-throughput.txt. The DANN path of pytorch-adapt, ``pytorch_adapt.adapters``,
``.containers``, ``.hooks`` and ``.weighters``, imports no torchvision; only
``pytorch_adapt.datasets`` and ``.transforms`` do, and they are not imported here, so no stub is
needed: the worker checks that ``torchvision`` stays out of ``sys.modules``.)

Run (from the repository root, with transferkit's own venv):

    .venv/bin/python benchmarks/throughput.py                          # 3 rounds, 150 timed steps
    .venv/bin/python benchmarks/throughput.py --rounds 5 --steps 300 --threads 2 --out table.md

What is the same for every library:

- The network: transferkit's ``lenet`` (conv 5x5 x20, max-pool, ReLU, conv 5x5 x50, channel dropout
  0.1, max-pool, ReLU, Linear(800, 500), ReLU, dropout 0.5; head Linear(500, 10)) on 28x28 grey
  images, and DANN's default domain discriminator (Linear(500, 1024), BatchNorm, ReLU, dropout 0.5,
  twice, then Linear(1024, 1): one logit, binary cross-entropy). The peers' processes re-declare
  identical ``nn.Module``s (they cannot import transferkit) and every library starts from the same
  initial weights, loaded with ``load_state_dict(strict=True)`` from a file this script writes
  from transferkit's modules: a different architecture fails to load. The parameter count is
  printed beside each library, and a run fails unless both the network and the discriminator
  moved away from the initial weights.
- One difference is transferkit's own: its ``lenet`` stores the convolution weights channels-last
  (NHWC), so its convolutions and max-pooling run in oneDNN's NHWC kernels (see
  ``transferkit.models.zoo.lenet``); the peers get the module as a user declares it (NCHW).
  ``--peers-channels-last`` gives the peers that layout too: the comparison of the libraries'
  training paths alone, with the same kernels doing the network's arithmetic.
- skada's default ``DomainClassifier`` ends in a softmax over a single output, which is the
  constant 1 (its binary cross-entropy trains nothing): its figure would not be DANN's. skada is
  given the discriminator above instead, behind skada's own gradient reversal layer, with
  ``BCEWithLogitsLoss`` as its domain criterion.
- The data: the labelled source is MNIST (the official 10k test split) and the unlabelled target
  USPS train resized to 28x28, read by ``transferkit.data.digits_images`` (``--data synthetic``:
  random pixels of the same shapes); the arrays are written once and every process reads the same
  tensors. Each step takes ``--batch`` source + ``--batch`` target samples.
- The optimizer: plain SGD, lr 0.01, momentum 0.9, no weight decay, no Nesterov, constant rate,
  over all parameters. Losses: cross-entropy + 0.5 (BCE_source + BCE_target), the weight
  transferkit uses (skada ``reg=0.5``; pytorch-adapt ``SumWeighter`` with 0.5 on both domain terms).
  transferkit's reversal coefficient follows its warm-up schedule, the peers' stays 1 (the same
  cost: one scalar per step).
- Training throughput only: no checkpoints (transferkit ``checkpoint_every=0``), no progress bar,
  no logging output (skorch ``verbose=0`` and its print-log callback off), no validation split
  (skorch ``train_split=None``). Each library keeps what its training step does by design:
  transferkit's loop (Lightning Fabric, its sampler, a float of every loss term per step),
  skorch's data loader (skada's per-sample dataset and collation) and history,
  pytorch-adapt's hooks (its adapter is driven by a minimal loop here that indexes the in-memory
  tensors with a fresh permutation per epoch: pytorch-adapt's own dataset helpers import
  torchvision).

Timing: ``--warmup`` steps are run and not timed, then ``--steps`` steps are timed by each
library's per-step hook (transferkit's ``callbacks``, a skorch callback, the loop for
pytorch-adapt), from the end of the last warm-up step to the end of the last timed step.
Samples/s = (source + target samples per step) x steps / seconds, the same for all; the table also
gives samples per CPU-second of the worker process (``time.process_time``), which a busy shared
machine disturbs less than wall time (each worker computes on one thread). Each library
runs in its own subprocess (skada switches scikit-learn's metadata routing on globally at import),
with ``--threads`` torch/BLAS/OpenMP threads (default 1: on a shared 2-core machine multi-threaded
timings are dominated by contention); the libraries alternate over ``--rounds`` rounds, in a
rotated order each round, so that a change of the machine's load hits all of them alike, and the
table reports the median over rounds.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
LIBS = ("transferkit", "skada", "pytorch-adapt")
PEERS_PYTHON = HERE / ".peers-venv" / "bin" / "python"
INPUT_SHAPE = (1, 28, 28)
NUM_CLASSES = 10
DOMAIN_WEIGHT = 0.5  # transferkit's binary_domain_loss averages the two domains' BCE
LR, MOMENTUM = 0.01, 0.9


class StopTraining(Exception):
    """Raised by a peer's clock after the last timed step (skorch trains whole epochs)."""


class Clock:
    """Marks the end of the last warm-up step and of the last timed step."""

    def __init__(self, warmup: int, steps: int) -> None:
        self.warmup, self.steps = warmup, steps
        self.done = 0
        self.t0 = self.t1 = None

    def tick(self) -> bool:
        """Call after every step; True once the last timed step has ended."""
        self.done += 1
        if self.done == self.warmup:
            self.t0 = (time.perf_counter(), time.process_time())
        if self.done == self.warmup + self.steps:
            self.t1 = (time.perf_counter(), time.process_time())
            return True
        return False

    def result(self, params: int, version: str, trained: dict) -> dict:
        """Wall and CPU seconds of the timed steps; fails unless every part of the network trained."""
        if self.t0 is None or self.t1 is None:
            raise RuntimeError(f"the clock saw {self.done} steps, expected {self.warmup + self.steps}")
        frozen = [k for k, v in trained.items() if not v > 0]
        if frozen:
            raise RuntimeError(f"these parts did not change during training: {frozen}")
        return {"seconds": self.t1[0] - self.t0[0], "cpu_seconds": self.t1[1] - self.t0[1],
                "params": params, "version": version}


# ------------------------------------------------------------------------------------------------
# the network, re-declared for the peers (must stay identical to transferkit's lenet + DANN disc)
# ------------------------------------------------------------------------------------------------

def peer_lenet():
    """transferkit's ``lenet((1, 28, 28), 10)`` as plain torch modules with the same names."""
    from torch import nn

    class LeNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            conv = nn.Sequential(
                nn.Conv2d(1, 20, 5), nn.MaxPool2d(2), nn.ReLU(),
                nn.Conv2d(20, 50, 5), nn.Dropout2d(0.1), nn.MaxPool2d(2), nn.ReLU(),
                nn.Flatten(),
            )
            self.backbone = nn.Sequential(conv, nn.Linear(800, 500), nn.ReLU(), nn.Dropout(0.5))
            self.bottleneck = nn.Identity()
            self.dropout = nn.Identity()
            self.head = nn.Linear(500, NUM_CLASSES)

        def forward(self, x, sample_weight=None):  # skada passes sample_weight when it has one
            return self.head(self.dropout(self.bottleneck(self.backbone(x))))

    return LeNet()


def peer_discriminator(in_features: int = 500, hidden: int = 1024, layers: int = 2, dropout: float = 0.5):
    """transferkit's ``methods.base.discriminator(500, 1024, 2, 1, 0.5)``."""
    from torch import nn

    mods = []
    width = in_features
    for _ in range(layers):
        mods += [nn.Linear(width, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(dropout)]
        width = hidden
    mods.append(nn.Linear(width, 1))
    return nn.Sequential(*mods)


def n_params(*modules) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())


def changes(init: dict, **modules) -> dict:
    """How far each module's weights moved from the shared initial ones (a guard: all must train)."""
    out = {}
    for name, mod in modules.items():
        start = init[name]
        out[name] = float(sum((p.detach() - start[k]).abs().sum() for k, p in mod.state_dict().items()
                              if k.endswith("weight")))
    return out


def to_channels_last(module):
    """The layout transferkit's lenet stores its convolution weights in (``--peers-channels-last``)."""
    import torch

    return module.to(memory_format=torch.channels_last)


# ------------------------------------------------------------------------------------------------
# one worker per library: returns {"seconds", "params", "version"}
# ------------------------------------------------------------------------------------------------

def run_transferkit(data: dict, init: dict, args: argparse.Namespace) -> dict:
    import transferkit
    from transferkit.data.dataset import DomainDataset
    from transferkit.methods.dann import DANN
    from transferkit.models.zoo import lenet
    from transferkit.train.config import TrainConfig
    from transferkit.train.loop import fit

    model = lenet(INPUT_SHAPE, NUM_CLASSES)
    method = DANN()
    method.setup(model.num_features, NUM_CLASSES)
    model.load_state_dict(init["model"])
    method.disc.load_state_dict(init["disc"])
    train = DomainDataset.from_arrays(data["xs"].numpy(), data["ys"].numpy(), data["xt"].numpy())
    cfg = TrainConfig(steps=args.warmup + args.steps, batch_size=args.batch, optimizer="sgd", lr=LR,
                      momentum=MOMENTUM, nesterov=False, weight_decay=0.0, lr_schedule="constant",
                      checkpoint_every=0, progress=False)
    clock = Clock(args.warmup, args.steps)
    fit(model, method, train, cfg, seed=0, callbacks=[lambda step, terms: clock.tick()])
    return clock.result(n_params(model, method), transferkit.__version__,
                        changes(init, model=model, disc=method.disc))


def run_skada(data: dict, init: dict, args: argparse.Namespace) -> dict:
    os.environ["POT_BACKEND_DISABLE_TENSORFLOW"] = "1"  # POT (a skada dependency) would import it
    import numpy as np
    import skada
    import torch
    from skada.deep import DANN
    from skada.deep.modules import GradientReversalLayer
    from skorch.callbacks import Callback

    class DomainLogit(torch.nn.Module):
        """skada's gradient reversal, then the shared discriminator: one logit per sample."""

        def __init__(self, disc: torch.nn.Module) -> None:
            super().__init__()
            self.disc = disc

        def forward(self, x, sample_weight=None):
            return self.disc(GradientReversalLayer.apply(x, 1.0)).view(-1)

    class Tick(Callback):
        def __init__(self, clock: Clock) -> None:
            self.clock = clock

        def on_batch_end(self, net, batch=None, training=None, **kw):
            if training and self.clock.tick():
                raise StopTraining

    model = peer_lenet()
    disc = peer_discriminator()
    model.load_state_dict(init["model"])
    disc.load_state_dict(init["disc"])
    if args.peers_channels_last:
        model = to_channels_last(model)
    xs, ys, xt = data["xs"].numpy(), data["ys"].numpy(), data["xt"].numpy()
    per_epoch = max(len(xs) - len(xs) % args.batch, len(xt) - len(xt) % args.batch) // args.batch
    clock = Clock(args.warmup, args.steps)
    net = DANN(
        model, layer_name="backbone", reg=DOMAIN_WEIGHT, domain_classifier=DomainLogit(disc),
        domain_criterion=torch.nn.BCEWithLogitsLoss(), batch_size=args.batch,
        max_epochs=-(-(args.warmup + args.steps) // per_epoch), train_split=None, device="cpu",
        optimizer=torch.optim.SGD, lr=LR, optimizer__momentum=MOMENTUM, verbose=0,
        callbacks=[("clock", Tick(clock))], callbacks__print_log=None,
    )
    X = {"X": np.concatenate([xs, xt]),
         "sample_domain": np.r_[np.ones(len(xs), np.int64), -np.ones(len(xt), np.int64)]}
    y = np.r_[ys, -np.ones(len(xt), np.int64)]
    try:
        net.fit(X, y)
    except StopTraining:
        pass
    return clock.result(n_params(model, disc), skada.__version__, changes(init, model=model, disc=disc))


def run_pytorch_adapt(data: dict, init: dict, args: argparse.Namespace) -> dict:
    import importlib.metadata

    import torch
    from pytorch_adapt.adapters import DANN
    from pytorch_adapt.containers import Models, Optimizers
    from pytorch_adapt.weighters import SumWeighter

    if "torchvision" in sys.modules:
        raise RuntimeError("pytorch-adapt's DANN path imported torchvision; see the module docstring")
    model = peer_lenet()
    disc = peer_discriminator()
    model.load_state_dict(init["model"])
    disc.load_state_dict(init["disc"])
    if args.peers_channels_last:
        model = to_channels_last(model)
    models = Models({"G": model.backbone, "C": model.head, "D": torch.nn.Sequential(disc, torch.nn.Flatten(0))})
    optimizers = Optimizers((torch.optim.SGD, {"lr": LR, "momentum": MOMENTUM}))
    weighter = SumWeighter(weights={"src_domain_loss": DOMAIN_WEIGHT, "target_domain_loss": DOMAIN_WEIGHT})
    adapter = DANN(models=models, optimizers=optimizers, hook_kwargs={"weighter": weighter})
    adapter.models.train()

    xs, ys, xt = data["xs"], data["ys"], data["xt"]
    b = args.batch
    gen = torch.Generator().manual_seed(0)

    def batches(n: int):
        while True:  # one permutation per epoch, consecutive slices of it
            perm = torch.randperm(n, generator=gen)
            for i in range(0, n - b + 1, b):
                yield perm[i:i + b]

    src_dom, tgt_dom = torch.zeros(b, dtype=torch.long), torch.ones(b, dtype=torch.long)
    clock = Clock(args.warmup, args.steps)
    for si, ti in zip(batches(len(xs)), batches(len(xt))):
        adapter.training_step({"src_imgs": xs[si], "src_labels": ys[si], "target_imgs": xt[ti],
                               "src_domain": src_dom, "target_domain": tgt_dom})
        if clock.tick():
            break
    return clock.result(n_params(model, disc), importlib.metadata.version("pytorch-adapt"),
                        changes(init, model=model, disc=disc))


RUNNERS = {"transferkit": run_transferkit, "skada": run_skada, "pytorch-adapt": run_pytorch_adapt}


def worker(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    blob = torch.load(args.data_file, weights_only=True)
    res = RUNNERS[args.worker](blob["data"], blob["init"], args)
    res.update(library=args.worker, threads=torch.get_num_threads(), torch=torch.__version__)
    Path(args.result).write_text(json.dumps(res))


# ------------------------------------------------------------------------------------------------
# the driver (transferkit's venv)
# ------------------------------------------------------------------------------------------------

def load_data(kind: str, seed: int = 0) -> tuple:
    import numpy as np

    if kind == "digits":
        from transferkit.data.digits_images import DigitsImages

        task = DigitsImages(tasks="MNIST-USPS").load_task("MNIST-USPS")
        src, tgt = task.train.source(), task.train.target()
        return src.x.astype(np.float32), src.y.astype(np.int64), tgt.x.astype(np.float32)
    rng = np.random.default_rng(seed)
    xs = rng.random((10000, *INPUT_SHAPE), dtype=np.float32)
    xt = rng.random((7291, *INPUT_SHAPE), dtype=np.float32)
    return xs, rng.integers(0, NUM_CLASSES, len(xs)), xt


def initial_weights() -> dict:
    """transferkit's lenet and DANN discriminator at seed 0: the starting point of every library."""
    import torch

    from transferkit.methods.dann import DANN
    from transferkit.models.zoo import lenet

    torch.manual_seed(0)
    model = lenet(INPUT_SHAPE, NUM_CLASSES)
    method = DANN()
    method.setup(model.num_features, NUM_CLASSES)
    return {"model": model.state_dict(), "disc": method.disc.state_dict()}


def machine() -> str:
    import torch

    return (f"{os.cpu_count()} CPU cores (shared with other jobs), Linux {platform.machine()}, "
            f"Python {platform.python_version()}, torch {torch.__version__}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--libs", default=",".join(LIBS), help=f"comma-separated subset of {', '.join(LIBS)}")
    ap.add_argument("--rounds", type=int, default=3, help="rounds; each runs every library once (default 3)")
    ap.add_argument("--steps", type=int, default=150, help="timed steps per run (default 150)")
    ap.add_argument("--warmup", type=int, default=10, help="untimed steps before them (default 10)")
    ap.add_argument("--batch", type=int, default=64, help="source and target samples per step, each (default 64)")
    ap.add_argument("--threads", type=int, default=1, help="torch/BLAS/OpenMP threads per process (default 1)")
    ap.add_argument("--data", choices=("digits", "synthetic"), default="digits",
                    help="MNIST->USPS 28x28 (default) or random pixels of the same shapes")
    ap.add_argument("--peers-python", default=str(PEERS_PYTHON), help="python of the peers' virtualenv")
    ap.add_argument("--peers-channels-last", action="store_true",
                    help="give the peers' LeNet the channels-last convolution weights transferkit's lenet has")
    ap.add_argument("--out", default=None, help="also write the table as markdown to this file")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--data-file", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--result", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    libs = [s.strip() for s in args.libs.split(",") if s.strip()]
    bad = [s for s in libs if s not in LIBS]
    if bad or not libs:
        sys.exit(f"throughput.py: unknown --libs {bad or libs}; choose from {', '.join(LIBS)}")
    if min(args.rounds, args.steps, args.warmup, args.batch, args.threads) < 1:
        sys.exit("throughput.py: --rounds, --steps, --warmup, --batch and --threads must be at least 1")
    if any(lib != "transferkit" for lib in libs) and not Path(args.peers_python).exists():
        sys.exit(f"throughput.py: no peers virtualenv at {args.peers_python}; create it as the top of "
                 "benchmarks/throughput.py says, or pass --peers-python")

    import numpy as np
    import torch

    xs, ys, xt = load_data(args.data)
    tmp = Path(tempfile.mkdtemp(prefix="tk_throughput_"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    blob = tmp / "inputs.pt"
    torch.save({"data": {"xs": torch.from_numpy(np.ascontiguousarray(xs)), "ys": torch.from_numpy(ys),
                         "xt": torch.from_numpy(np.ascontiguousarray(xt))},
                "init": initial_weights()}, blob)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "OPENBLAS_NUM_THREADS": str(args.threads),
           "MKL_NUM_THREADS": str(args.threads), "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore",
           "HF_HUB_OFFLINE": "1"}
    print(f"DANN on LeNet {'x'.join(map(str, INPUT_SHAPE))}: {len(xs)} source, {len(xt)} target samples ({args.data}); "
          f"batch {args.batch}+{args.batch}, {args.warmup} warm-up + {args.steps} timed steps, "
          f"{args.threads} thread(s), {args.rounds} rounds", flush=True)
    runs: dict[str, list[dict]] = {lib: [] for lib in libs}
    t_start = time.time()
    for r in range(args.rounds):
        order = libs[r % len(libs):] + libs[:r % len(libs)]
        for lib in order:
            python = sys.executable if lib == "transferkit" else args.peers_python
            out = tmp / f"{lib}_{r}.json"
            cmd = [python, str(Path(__file__).resolve()), "--worker", lib, "--data-file", str(blob),
                   "--result", str(out), "--steps", str(args.steps), "--warmup", str(args.warmup),
                   "--batch", str(args.batch), "--threads", str(args.threads)]
            cmd += ["--peers-channels-last"] if args.peers_channels_last else []
            proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, check=False)
            if proc.returncode != 0 or not out.exists():
                sys.exit(f"throughput.py: the {lib} worker failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
            res = json.loads(out.read_text())
            res["samples_per_s"] = 2 * args.batch * args.steps / res["seconds"]
            res["samples_per_cpu_s"] = 2 * args.batch * args.steps / res["cpu_seconds"]
            runs[lib].append(res)
            print(f"  round {r + 1}: {lib:<14} {res['samples_per_s']:8.0f} samples/s "
                  f"({1000 * res['seconds'] / args.steps:.1f} ms/step; {res['samples_per_cpu_s']:.0f} per CPU-second)",
                  flush=True)
    wall = time.time() - t_start

    med = {lib: statistics.median(x["samples_per_s"] for x in runs[lib]) for lib in libs}
    med_cpu = {lib: statistics.median(x["samples_per_cpu_s"] for x in runs[lib]) for lib in libs}
    ours, ours_cpu = med.get("transferkit"), med_cpu.get("transferkit")
    rows = []
    for lib in libs:
        first = runs[lib][0]
        theirs = lib != "transferkit" and ours is not None
        rows.append((lib, first["version"], f"{med[lib]:.0f}",
                     " / ".join(f"{x['samples_per_s']:.0f}" for x in runs[lib]),
                     f"{1000 * 2 * args.batch / med[lib]:.1f}", f"{first['params']:,}",
                     f"{ours / med[lib]:.2f}x" if theirs else "",
                     f"{med_cpu[lib]:.0f}", f"{ours_cpu / med_cpu[lib]:.2f}x" if theirs else ""))
    head = ("library", "version", "samples/s (median)", "per round", "ms/step", "params", "ours / theirs",
            "samples per CPU-s", "ours / theirs (CPU)")
    table = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |" for r in rows]
    print("\n" + "\n".join(table))
    if args.out:
        cmd = " ".join(["OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python",
                        "benchmarks/throughput.py", *sys.argv[1:]])
        layout = ("The peers' LeNet has the channels-last convolution weights of transferkit's lenet "
                  "(--peers-channels-last): this compares the libraries' training paths alone."
                  if args.peers_channels_last else
                  "transferkit's lenet stores its convolution weights channels-last (NHWC); the peers get the "
                  "plain NCHW module a user declares (--peers-channels-last gives them the same layout).")
        about = (f"Samples/s = (source + target samples per step) x timed steps / seconds; batch {args.batch} "
                 f"source + {args.batch} target, {args.warmup} warm-up steps then {args.steps} timed steps, "
                 f"{args.threads} thread(s) per process, median of {args.rounds} rounds (libraries alternating). "
                 f"Same network and initial weights ({rows[0][5]} parameters: LeNet + DANN's 1024x2 "
                 f"discriminator), same data ({args.data}), plain SGD lr 0.01 momentum 0.9; no checkpoints, "
                 "logging or validation. Per CPU-second: the same count over the worker's CPU time, less "
                 "disturbed by the other jobs of the machine. See the docstring of benchmarks/throughput.py "
                 "for the settings of each library.")
        md = [f"<!-- produced by: {cmd} -->",
              f"<!-- date: {date.today().isoformat()}; machine: {machine()}; wall time {wall:.0f}s -->", "",
              "# DANN training throughput, digits LeNet", "", about, "", layout, "", *table, ""]
        Path(args.out).write_text("\n".join(md))
        print(f"\nwritten: {args.out}")


if __name__ == "__main__":
    main()
