# ruff: noqa: E731  (a research script)
"""The validation scan behind configs/best-unseen-*.yaml (issue 16): ImageNet start, class-disjoint
folds only, never the test classes 5-9.

fashion-mnist-unseen trains on classes 0-4; its two validation folds (seed 0) hold out classes 2
and 4 (fold 0, training on 0, 1, 3) and 0, 1 and 3 (fold 1, training on 2 and 4). For each fold this
script fine-tunes the top of an ImageNet EfficientNet-Lite0 (64 px input; stages up to --cut frozen
and computed once, through the project's feature store) on the fold's training classes and reports
leave-one-out mAP@all among 10,000 held-out images (2,000 queries), before and after training, of
the L2-normalised 1280-d backbone features ("float") and of ITQ 48-bit codes fitted on them
("itq48"), as the trainer's class-disjoint validation does. Options: --bn frozen|train (batch norm
of the trainable top at its ImageNet statistics or at batch statistics), --adabn (re-estimate the
statistics on the training images first), --proj D (multi-similarity on a D-d projection head; 0:
on the backbone features themselves), --lr, --steps, --batch, --l2sp. The numbers it printed are in
docs/RESULTS.md ("Unseen classes from ImageNet").

Usage: python benchmarks/unseen_imagenet_scan.py --steps 400 --bn frozen --lr 1e-4 --proj 128
"""

import argparse
import json
import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deephash.data.datasets import load_dataset
from deephash.data.transforms import batch_transform
from deephash.evaluation.evaluator import retrieval_metrics
from deephash.evaluation.feature_store import FeatureStore, default_cache_dir
from deephash.hashing import ITQ
from deephash.losses import create_loss
from deephash.models import create_backbone
from deephash.models.efficientnet_lite import INPUT_MEAN, INPUT_STD

torch.set_num_threads(2)
ap = argparse.ArgumentParser()
ap.add_argument("--arch", default="efficientnet-lite0")
ap.add_argument("--input-size", type=int, default=64)
ap.add_argument("--fold", type=int, nargs="+", default=[0, 1])
ap.add_argument("--cut", type=int, default=5, help="stages frozen (4 or more)")
ap.add_argument("--steps", type=int, default=0)
ap.add_argument("--lr", type=float, default=1e-4)
ap.add_argument("--bn", default="frozen", choices=["frozen", "train"])
ap.add_argument("--proj", type=int, default=0)
ap.add_argument("--l2sp", type=float, default=0.0)
ap.add_argument("--batch", type=int, default=128)
ap.add_argument("--adabn", action="store_true")
a = ap.parse_args()

FOLDS = {0: [2, 4], 1: [0, 1, 3]}  # held-out classes of fashion-mnist-unseen's folds (seed 0)
d = load_dataset("fashion-mnist")
sel = np.where(~d.is_test & (d.data.labels < 5))[0]  # the training classes only
L = d.data.labels[sel]
pre = lambda x: batch_transform(
    torch.from_numpy(np.ascontiguousarray(x)), (INPUT_MEAN,), (INPUT_STD,)
)


def network():
    m = create_backbone(
        a.arch, weights="imagenet", in_channels=1, num_classes=0, input_size=a.input_size
    ).eval()
    return m


# stages 1-4 through the project's feature store (computed once, reused by later runs)
base = network()
bottom4, _ = base.split(4)
store = FeatureStore(
    default_cache_dir() / "frozen", FeatureStore.key_for(bottom4, scan="stage4", size=a.input_size)
)
H0 = store.maps(bottom4, d.data.images[sel], pre, device=torch.device("cpu"), desc="stages 1-4")


def parts(m):
    blocks = list(m._blocks)
    e4, ec = m.stage_ends[3], m.stage_ends[a.cut - 1]
    return nn.ModuleList(blocks[e4:ec]), nn.ModuleList(blocks[ec:]), m._conv_head, m._bn1


def top_forward(blocks, conv_head, bn1, h):
    for blk in blocks:
        h = blk(h)
    return F.relu6(bn1(conv_head(h))).mean((2, 3))


@torch.no_grad()
def features(blocks, conv_head, bn1, H, idx):
    out = [
        top_forward(blocks, conv_head, bn1, H[idx[s : s + 1000]].float())
        for s in range(0, len(idx), 1000)
    ]
    return F.normalize(torch.cat(out), dim=1).numpy()


def evaluate(blocks, conv_head, bn1, H, held):
    idx = np.random.default_rng(17).choice(held, min(10000, len(held)), replace=False)
    f = features(blocks, conv_head, bn1, H, idx)
    y, nq = L[idx], 2000
    r = retrieval_metrics(f[:nq], y[:nq], f, y, leave_one_out=True)
    z = ITQ(48, seed=0).fit(f).project(f)
    r2 = retrieval_metrics(z[:nq], y[:nq], z, y, bits=48, leave_one_out=True)
    return {"float": round(r["map"], 4), "itq48": round(r2["map"], 4)}


res = {}
for fold in a.fold:
    torch.manual_seed(0)
    m = network()
    pre_blocks, blocks, conv_head, bn1 = parts(m)
    maps = []  # the frozen stages after stage 4, once per fold (they do not train)
    with torch.no_grad():
        for s in range(0, len(H0), 2000):
            h = H0[s : s + 2000].float()
            for blk in pre_blocks:
                h = blk(h)
            maps.append(h.half())
    H = torch.cat(maps)
    held = np.where(np.isin(L, FOLDS[fold]))[0]
    train_idx = np.where(~np.isin(L, FOLDS[fold]))[0]
    if a.adabn:
        for mod in [*blocks.modules(), bn1]:
            if isinstance(mod, nn.BatchNorm2d):
                mod.reset_running_stats()
                mod.momentum = None
        blocks.train(), bn1.train()
        with torch.no_grad():
            for s in range(0, len(train_idx), 500):
                top_forward(blocks, conv_head, bn1, H[train_idx[s : s + 500]].float())
        blocks.eval(), bn1.eval()
    before = evaluate(blocks, conv_head, bn1, H, held)
    print("fold", fold, "untrained", before, flush=True)
    res[str(fold)] = {"before": before}
    if not a.steps:
        continue
    trainable = [p for mod in (blocks, conv_head, bn1) for p in mod.parameters()]
    start = [p.detach().clone() for p in trainable]
    proj = nn.Linear(1280, a.proj) if a.proj else None
    loss_fn = create_loss("multi-similarity")
    opt = torch.optim.Adam(trainable + (list(proj.parameters()) if proj else []), lr=a.lr)
    g = np.random.default_rng(1)
    t0 = time.perf_counter()
    for step in range(a.steps):
        for pg in opt.param_groups:
            pg["lr"] = a.lr * 0.5 * (1 + math.cos(math.pi * step / a.steps))
        blocks.train(), bn1.train(), conv_head.train()
        if a.bn == "frozen":
            for mod in [*blocks.modules(), bn1]:
                if isinstance(mod, nn.BatchNorm2d):
                    mod.eval()
        i = g.choice(train_idx, a.batch, replace=False)
        f = top_forward(blocks, conv_head, bn1, H[i].float())
        e = F.normalize(proj(f) if proj else f, dim=1)
        loss = loss_fn(e, torch.as_tensor(L[i])).loss
        if a.l2sp:
            loss = loss + a.l2sp * sum(((p - s0) ** 2).sum() for p, s0 in zip(trainable, start))
        opt.zero_grad()
        loss.backward()
        opt.step()
    blocks.eval(), bn1.eval(), conv_head.eval()
    after = evaluate(blocks, conv_head, bn1, H, held)
    print("fold", fold, "trained", after, "train_s", round(time.perf_counter() - t0, 1), flush=True)
    res[str(fold)]["after"] = after
print(json.dumps({"args": vars(a), "res": res}))
