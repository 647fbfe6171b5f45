"""Train the detector's logistic model on ``data/simplicity/train.jsonl``.

Run ``python -m crewchief.simplicity.train`` after editing the training set; it
writes ``crewchief/simplicity/model.json`` and prints the accuracy on the dev
set. ``--search`` cross-validates the regularization strength first.

Pure Python on purpose: a few thousand sparse updates per epoch train in
seconds, and neither training nor scoring needs numpy.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import random
import sys
from collections.abc import Sequence
from pathlib import Path

from crewchief.simplicity._features import analyse
from crewchief.simplicity._model import MODEL_FILE, LinearModel, sigmoid
from crewchief.simplicity.data import DATA_DIR, Example, load_examples

L2 = 1e-4
EPOCHS = 30
LEARNING_RATE = 0.5
FOLDS = 5
SEED = 7
_PRUNE = 1e-3

Row = tuple[list[int], list[float], int]


def featurize(text: str) -> dict[str, float]:
    return analyse(text)[2]


def _rows(
    feats: Sequence[dict[str, float]], labels: Sequence[int], index: dict[str, int]
) -> list[Row]:
    rows = []
    for f, y in zip(feats, labels, strict=True):
        keys = [k for k in f if k in index]
        rows.append(([index[k] for k in keys], [f[k] for k in keys], y))
    return rows


def fit(
    feats: Sequence[dict[str, float]],
    labels: Sequence[int],
    *,
    l2: float = L2,
    epochs: int = EPOCHS,
    seed: int = SEED,
) -> tuple[dict[str, float], float]:
    """L2-regularized logistic regression by AdaGrad; labels are 1 = fast, 0 = plan."""
    names = sorted({k for f in feats for k in f})
    index = {k: i for i, k in enumerate(names)}
    rows = _rows(feats, labels, index)
    w = [0.0] * len(names)
    g2 = [1e-8] * len(names)
    bias, gb = 0.0, 1e-8
    order = list(range(len(rows)))
    rng = random.Random(seed)
    for _ in range(epochs):
        rng.shuffle(order)
        for r in order:
            idx, vals, y = rows[r]
            z = bias + sum(w[i] * v for i, v in zip(idx, vals, strict=True))
            err = sigmoid(z) - y
            for i, v in zip(idx, vals, strict=True):
                grad = err * v + l2 * w[i]
                g2[i] += grad * grad
                w[i] -= LEARNING_RATE * grad / math.sqrt(g2[i])
            gb += err * err
            bias -= LEARNING_RATE * err / math.sqrt(gb)
    weights = {names[i]: wi for i, wi in enumerate(w) if abs(wi) >= _PRUNE}
    return weights, bias


def _folds(n: int, k: int, seed: int) -> list[list[int]]:
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return [order[i::k] for i in range(k)]


def out_of_fold_margins(
    feats: Sequence[dict[str, float]], labels: Sequence[int], *, l2: float, folds: int = FOLDS
) -> list[float]:
    """Each example's margin from a model that did not see it (for calibration and search)."""
    margins = [0.0] * len(feats)
    for held in _folds(len(feats), folds, SEED):
        held_set = set(held)
        keep = [i for i in range(len(feats)) if i not in held_set]
        weights, bias = fit([feats[i] for i in keep], [labels[i] for i in keep], l2=l2)
        fold_model = LinearModel(weights=weights, bias=bias)
        for i in held:
            margins[i] = fold_model.margin(feats[i])
    return margins


def platt(
    margins: Sequence[float], labels: Sequence[int], iterations: int = 50
) -> tuple[float, float]:
    """Fit ``p = sigmoid(a·m + b)`` to held-out margins by Newton's method (Platt scaling)."""
    n_pos = sum(labels)
    n_neg = len(labels) - n_pos
    # Platt's smoothed targets keep a perfectly separated set from pushing a to infinity.
    hi, lo = (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2)
    targets = [hi if y else lo for y in labels]
    a, b = 1.0, 0.0
    for _ in range(iterations):
        gaa = gab = gbb = 1e-9
        da = db = 0.0
        for m, t in zip(margins, targets, strict=True):
            p = sigmoid(a * m + b)
            d = p - t
            da += d * m
            db += d
            s = p * (1 - p)
            gaa += s * m * m
            gab += s * m
            gbb += s
        det = gaa * gbb - gab * gab
        step_a = (gbb * da - gab * db) / det
        step_b = (gaa * db - gab * da) / det
        a, b = a - step_a, b - step_b
        if abs(step_a) < 1e-7 and abs(step_b) < 1e-7:
            break
    return a, b


def train(examples: Sequence[Example], *, l2: float = L2, source: str = "") -> LinearModel:
    """Fit weights on all examples and calibrate them on out-of-fold margins."""
    feats = [featurize(e.text) for e in examples]
    labels = [1 if e.label == "fast" else 0 for e in examples]
    weights, bias = fit(feats, labels, l2=l2)
    calibration = platt(out_of_fold_margins(feats, labels, l2=l2), labels)
    meta = {
        "trained_on": source,
        "examples": len(examples),
        "data_sha256": data_digest(examples),
        "l2": l2,
        "epochs": EPOCHS,
        "features": len(weights),
    }
    return LinearModel(weights=weights, bias=bias, calibration=calibration, meta=meta)


def data_digest(examples: Sequence[Example]) -> str:
    """A digest of the texts and labels a model was trained on."""
    h = hashlib.sha256()
    for e in examples:
        h.update(f"{e.label}\t{e.text}\n".encode())
    return h.hexdigest()


def _search(examples: Sequence[Example], grid: Sequence[float]) -> float:
    feats = [featurize(e.text) for e in examples]
    labels = [1 if e.label == "fast" else 0 for e in examples]
    best, best_acc = grid[0], -1.0
    for l2 in grid:
        margins = out_of_fold_margins(feats, labels, l2=l2)
        acc = sum((m >= 0) == bool(y) for m, y in zip(margins, labels, strict=True)) / len(labels)
        print(f"l2={l2:g}  cross-validated accuracy {acc:.1%}")
        if acc > best_acc:
            best, best_acc = l2, acc
    return best


def main(argv: list[str] | None = None) -> int:
    from crewchief.simplicity.detector import SimplicityDetector
    from crewchief.simplicity.metrics import Metrics

    parser = argparse.ArgumentParser(
        prog="python -m crewchief.simplicity.train", description=__doc__
    )
    parser.add_argument("--train", type=Path, default=DATA_DIR / "train.jsonl")
    parser.add_argument("--dev", type=Path, default=DATA_DIR / "dev.jsonl")
    parser.add_argument("--out", type=Path, default=MODEL_FILE)
    parser.add_argument("--l2", type=float, default=L2)
    parser.add_argument("--search", action="store_true", help="cross-validate l2 first")
    args = parser.parse_args(argv)
    if not args.train.is_file():
        parser.error(
            f"--train: {args.train} does not exist (the training set is in the source tree, "
            "data/simplicity/train.jsonl)"
        )
    try:
        examples = load_examples(args.train)
    except ValueError as exc:
        parser.error(f"--train: {exc}")
    l2 = _search(examples, [1e-5, 3e-5, 1e-4, 3e-4, 1e-3]) if args.search else args.l2
    try:
        source = str(args.train.resolve().relative_to(DATA_DIR.parents[1]))
    except ValueError:
        source = str(args.train)
    model = train(examples, l2=l2, source=source)
    model.save(args.out)
    print(f"wrote {args.out} ({len(model.weights)} weights, l2={l2:g}, trained on {len(examples)})")
    if args.dev.is_file():
        detector = SimplicityDetector(model=model)
        dev = load_examples(args.dev)
        m = Metrics.of((e.label or "", detector.decide(e.text).route) for e in dev)
        print(f"dev ({args.dev}) at threshold {detector.threshold}:")
        print(m.report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
