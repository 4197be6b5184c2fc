# ruff: noqa: B023, E731, F841  (a research script: closures over the loop's model are intended)
"""The validation scan behind configs/best-unseen-*.yaml (issue 9): class-disjoint folds only.

Trains a small-cnn on the training classes of one fold of fashion-mnist-unseen (seed 0; fold 0 holds
out classes 2 and 4, fold 1 classes 0, 1 and 3) and reports, on the held-out fold, leave-one-out
mAP@all of: the backbone's fc features ("fc", L2-normalised; "centred": minus the held-out
images' mean, then normalised; "pca48": their ITQ projection before the sign), pooled conv stages 2+3 ("s23"), ITQ
48 bits on the normalised fc features ("itq48"), and the trained head ("head"). Options: the
multi-similarity weight (--sup), an NT-Xent self-supervised term on two augmented views (--ssl),
L2-SP towards the initial weights (--l2sp), strong (random resized crop + jitter) or mild
augmentation (--strong). Never touches the test classes 5-9. The numbers it printed are in
docs/RESULTS.md ("Unseen classes: how the recipes were chosen").

Usage: python benchmarks/unseen_validation_scan.py --steps 800 --sup 1 --ssl 0
"""

import argparse
import math
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from deephash.data import load_protocol_data
from deephash.evaluation.evaluator import retrieval_metrics
from deephash.losses import create_loss
from deephash.models import create_backbone

torch.set_num_threads(1)


def load(fold):
    return load_protocol_data("fashion-mnist-unseen", seed=0, validation_fold=fold)


@torch.no_grad()
def feats(backbone, images, pre, grid=1):
    backbone.eval()
    outs = {"fc": [], "s2": [], "s3": [], "s23": []}
    for s in range(0, len(images), 1000):
        x = pre(images[s : s + 1000])
        if backbone.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        h = x
        stages = []
        for st in backbone.features:
            h = st(h)
            stages.append(h)
        p = backbone.pool(h)
        fc = backbone.relu(backbone.bn(backbone.fc(torch.flatten(p, 1))))
        n = lambda t: torch.nn.functional.normalize(t, dim=1)
        s2 = n(torch.nn.functional.adaptive_avg_pool2d(stages[1], grid).flatten(1))
        s3 = n(torch.nn.functional.adaptive_avg_pool2d(stages[2], grid).flatten(1))
        outs["fc"].append(n(fc))
        outs["s2"].append(s2)
        outs["s3"].append(s3)
        outs["s23"].append(torch.cat([s2, s3], 1) / 2**0.5)
    return {k: torch.cat(v).numpy() for k, v in outs.items()}


def evaluate(backbone, data, grid=1, keys=None):
    pre = data.preprocessor(augment=False)
    v = data.validation
    imgs = data.pool.images[data.protocol.validation]
    labels = data.pool.labels[data.protocol.validation]
    F = feats(backbone, imgs, pre, grid)
    res = {}
    for k, f in F.items():
        if keys and k not in keys:
            continue
        m = retrieval_metrics(f, labels, f, labels, leave_one_out=True)
        res[k] = round(m["map"], 4)
    return res


ap = argparse.ArgumentParser()
ap.add_argument("--fold", type=int, nargs="+", default=[0, 1])
ap.add_argument("--steps", type=int, default=600)
ap.add_argument("--bs", type=int, default=256)
ap.add_argument("--sup", type=float, default=1.0)
ap.add_argument("--ssl", type=float, default=0.0)
ap.add_argument("--l2sp", type=float, default=0.0)
ap.add_argument("--lr", type=float, default=2e-3)
ap.add_argument("--temp", type=float, default=0.2)
ap.add_argument("--dim", type=int, default=64)
ap.add_argument("--strong", type=int, default=1)
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--evals", type=int, default=2)
ap.add_argument("--eval-init", action="store_true", help="also evaluate before any step")
a = ap.parse_args()
torch.set_num_threads(a.threads)


def augment(x, g, strong):
    # x float (B,1,H,W) normalized. random resized crop + flip (+ intensity jitter)
    B = x.shape[0]
    scale = torch.empty(B).uniform_(0.6 if strong else 0.85, 1.0, generator=g)
    ar = torch.exp(torch.empty(B).uniform_(math.log(3 / 4), math.log(4 / 3), generator=g))
    sx = torch.sqrt(scale * ar)
    sy = torch.sqrt(scale / ar)
    tx = (torch.rand(B, generator=g) * 2 - 1) * (1 - sx).clamp_min(0)
    ty = (torch.rand(B, generator=g) * 2 - 1) * (1 - sy).clamp_min(0)
    flip = torch.where(torch.rand(B, generator=g) < 0.5, -1.0, 1.0)
    theta = torch.zeros(B, 2, 3)
    theta[:, 0, 0] = sx * flip
    theta[:, 1, 1] = sy
    theta[:, 0, 2] = tx
    theta[:, 1, 2] = ty
    grid = F.affine_grid(theta, x.shape, align_corners=False)
    bg = x.amin(dim=(1, 2, 3), keepdim=True)
    y = F.grid_sample(x - bg, grid, align_corners=False) + bg
    if strong:
        c = torch.empty(B, 1, 1, 1).uniform_(0.6, 1.4, generator=g)
        b = torch.empty(B, 1, 1, 1).uniform_(-0.4, 0.4, generator=g)
        m = y.mean(dim=(1, 2, 3), keepdim=True)
        y = (y - m) * c + m + b
    return y


def nt_xent(z1, z2, t):
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    s = z @ z.T / t
    n = z1.shape[0]
    s.fill_diagonal_(-1e9)
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return F.cross_entropy(s, target)


for fold in a.fold:
    data = load(fold)
    torch.manual_seed(0)
    bb = create_backbone("small-cnn", in_channels=1)
    head = nn.Linear(bb.out_features, a.dim)
    proj = nn.Sequential(nn.Linear(bb.out_features, 256), nn.ReLU(), nn.Linear(256, 128))
    init = [p.detach().clone() for p in bb.parameters()]
    params = list(bb.parameters()) + list(head.parameters()) + list(proj.parameters())
    opt = torch.optim.Adam(params, lr=a.lr, weight_decay=5e-4 if a.l2sp == 0 else 0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, a.steps) / a.steps))
    )
    ms = create_loss("multi-similarity")
    pre = data.preprocessor(augment=False)
    imgs = data.pool.images[data.protocol.train]
    labels = torch.as_tensor(data.pool.labels[data.protocol.train])
    rng = np.random.default_rng(0)
    g = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    evals_at = {int(a.steps * (i + 1) / a.evals) for i in range(a.evals)}
    for step in range(0 if a.eval_init else 1, a.steps + 1):
        if step == 0:
            evals_at.add(0)
        bb.train()
        idx = rng.choice(len(imgs), a.bs, replace=False)
        x = pre(imgs[idx])
        y = labels[idx]
        if a.ssl > 0:
            v = torch.cat([augment(x, g, a.strong), augment(x, g, a.strong)])
            f = bb(v)
            f1, f2 = f[: a.bs], f[a.bs :]
            loss = a.ssl * nt_xent(proj(f1), proj(f2), a.temp)
            e = F.normalize(head(f1), dim=1)
        else:
            f1 = bb(augment(x, g, a.strong))
            loss = 0.0
            e = F.normalize(head(f1), dim=1)
        if a.sup > 0:
            loss = loss + a.sup * ms(e, y).loss
        if a.l2sp > 0:
            loss = loss + a.l2sp * sum(
                ((p - p0) ** 2).sum() for p, p0 in zip(bb.parameters(), init)
            )
        if step > 0:
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        if step in evals_at:

            class H(nn.Module):
                def forward(s, x):
                    return F.normalize(head(bb(x)), dim=1)

            r = evaluate(bb, data, grid=2, keys=["fc", "s23"])
            # head embedding
            from deephash.evaluation.evaluator import embed_images, retrieval_metrics

            vi = data.protocol.validation
            he = embed_images(H(), data.pool.images[vi], pre, device=torch.device("cpu"))
            from deephash.evaluation.evaluator import embed_images as _e
            from deephash.hashing import ITQ

            fcn = _e(
                nn.Sequential(bb, nn.Identity()),
                data.pool.images[vi],
                pre,
                device=torch.device("cpu"),
            )
            fcn = fcn / np.linalg.norm(fcn, axis=1, keepdims=True)
            itq = ITQ(48, seed=0)
            itq.fit(fcn)
            pr = itq.project(fcn)
            both = retrieval_metrics(
                pr, data.pool.labels[vi], pr, data.pool.labels[vi], bits=48, leave_one_out=True
            )
            r["itq48"] = round(both["map"], 4)
            r["pca48"] = round(both["float"]["map"], 4)  # the rotated PCA projection, unsigned
            cen = fcn - fcn.mean(0)
            cen = cen / np.linalg.norm(cen, axis=1, keepdims=True)
            r["centred"] = round(
                retrieval_metrics(
                    cen, data.pool.labels[vi], cen, data.pool.labels[vi], leave_one_out=True
                )["map"],
                4,
            )
            r["head"] = round(
                retrieval_metrics(
                    he, data.pool.labels[vi], he, data.pool.labels[vi], leave_one_out=True
                )["map"],
                4,
            )
            print(
                f"fold {fold} step {step} loss {float(loss):.3f} {time.perf_counter() - t0:.0f}s {r}",
                flush=True,
            )
