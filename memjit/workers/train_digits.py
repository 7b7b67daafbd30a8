"""Train the digits workers: int8-quantized MLPs on scikit-learn's bundled 8x8 digits set.

Build-time only (needs the `[train]` extra, i.e. scikit-learn, for `load_digits()`; no
download). Run from anywhere: `python memjit/workers/train_digits.py` (or `make digits` in
memjit/workers). With fixed seeds it rewrites, deterministically on one machine:

- `digits_{small,large,random}_weights.h`: int8 weights, int32 biases and the hidden layer's
  requantization shift of each model, included by `digits_{small,large,random}.c`;
- `digits_test.bin`: the held-out labelled test set the oracle scores against at run time
  (format in memjit.market.tasks.read_test_set).

The models: `small` is 64-16-10 trained for one epoch, `large` 64-32-10 trained for 60
epochs, `xl` 64-256-10 trained for 60 epochs (the precompile workers' larger model, to show
how proving grows with model size), `random` 64-32-10 with seeded random weights.
`python train_digits.py xl` retrains only the models named. Inference is integer-only, exactly as
the C workers compute it: `forward()` is the numpy reference the tests compare them with.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
N_IN, N_OUT = 64, 10
N_TEST = 360  # held-out images (about 20% of the 1797)
SPLIT_SEED, TRAIN_SEED, RANDOM_SEED = 20261124, 7, 11
MODELS = {"small": (16, 1), "large": (32, 60), "xl": (256, 60)}  # name: (hidden units, epochs)
TEST_MAGIC = b"MJDIGIT1"


def split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train images, train labels, test images, test labels): uint8 pixels 0..16, fixed split."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.data.astype(np.uint8)
    labels = digits.target.astype(np.uint8)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(labels))
    test, train = order[:N_TEST], order[N_TEST:]
    return images[train], labels[train], images[test], labels[test]


def train_float(x: np.ndarray, y: np.ndarray, hidden: int, epochs: int) -> list[np.ndarray]:
    """A float MLP (ReLU hidden layer, softmax output) trained by minibatch SGD with momentum.

    Inputs are raw pixels scaled by 1/16; returns [W1 (hidden x 64), b1, W2 (10 x hidden), b2]
    with the 1/16 folded into W1, so that they apply to raw pixels.
    """
    rng = np.random.default_rng(TRAIN_SEED)
    xf = x.astype(np.float64) / 16.0
    params = [rng.normal(0, np.sqrt(2 / N_IN), (hidden, N_IN)), np.zeros(hidden),
              rng.normal(0, np.sqrt(2 / hidden), (N_OUT, hidden)), np.zeros(N_OUT)]
    velocity = [np.zeros_like(p) for p in params]
    onehot = np.eye(N_OUT)[y]
    lr, momentum, batch = 0.05, 0.9, 32
    for _ in range(epochs):
        order = rng.permutation(len(y))
        for start in range(0, len(y), batch):
            idx = order[start:start + batch]
            w1, b1, w2, b2 = params
            z1 = xf[idx] @ w1.T + b1
            h = np.maximum(z1, 0)
            logits = h @ w2.T + b2
            p = np.exp(logits - logits.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            d2 = (p - onehot[idx]) / len(idx)
            d1 = (d2 @ w2) * (z1 > 0)
            grads = [d1.T @ xf[idx], d1.sum(0), d2.T @ h, d2.sum(0)]
            for v, g, prm in zip(velocity, grads, params):
                v *= momentum
                v -= lr * g
                prm += v
    w1, b1, w2, b2 = params
    return [w1 / 16.0, b1, w2, b2]


def quantize(params: list[np.ndarray], x: np.ndarray) -> dict[str, np.ndarray | int]:
    """int8 weights, int32 biases and the hidden shift that keep activations within 0..127."""
    w1, b1, w2, b2 = params
    s1 = 127 / np.abs(w1).max()
    w1q, b1q = np.round(w1 * s1).astype(np.int8), np.round(b1 * s1).astype(np.int32)
    acc1 = x.astype(np.int32) @ w1q.T.astype(np.int32) + b1q
    shift = max(0, int(np.ceil(np.log2(max(int(acc1.max()), 1) / 127))))
    s2 = 127 / np.abs(w2).max()
    w2q = np.round(w2 * s2).astype(np.int8)
    b2q = np.round(b2 * s2 * s1 / (1 << shift)).astype(np.int32)
    return {"W1": w1q, "B1": b1q, "W2": w2q, "B2": b2q, "SHIFT1": shift}


def random_model(hidden: int = 32) -> dict[str, np.ndarray | int]:
    """Seeded random int8 weights: the untrained baseline."""
    rng = np.random.default_rng(RANDOM_SEED)
    return {"W1": rng.integers(-64, 64, (hidden, N_IN), dtype=np.int8),
            "B1": rng.integers(-256, 256, hidden, dtype=np.int32),
            "W2": rng.integers(-64, 64, (N_OUT, hidden), dtype=np.int8),
            "B2": rng.integers(-256, 256, N_OUT, dtype=np.int32), "SHIFT1": 6}


def forward(model: dict[str, np.ndarray | int], images: np.ndarray) -> np.ndarray:
    """The predicted classes, computed exactly as the C workers do (int32, shift, clamp, argmax)."""
    x = np.asarray(images, dtype=np.int32).reshape(-1, N_IN)
    acc1 = x @ model["W1"].astype(np.int32).T + model["B1"]
    hidden = np.clip(acc1 >> int(model["SHIFT1"]), 0, 127)
    out = hidden @ model["W2"].astype(np.int32).T + model["B2"]
    return np.argmax(out, axis=1)  # first maximum, as the C loop keeps the lowest index


def header(name: str, model: dict[str, np.ndarray | int]) -> str:
    """The C header of one model (sizes, shift, weight and bias arrays)."""
    arrays = [("signed char", "W1"), ("int", "B1"), ("signed char", "W2"), ("int", "B2")]
    parts = [f"/* Generated by train_digits.py: the {name} digits model; do not edit. */\n",
             f"#define DIGITS_HIDDEN {model['W1'].shape[0]}\n",
             f"#define DIGITS_SHIFT1 {model['SHIFT1']}\n\n"]
    for ctype, key in arrays:
        a = model[key]
        dims = "".join(f"[{d}]" for d in a.shape)
        rows = a.reshape(a.shape[0], -1) if a.ndim > 1 else a.reshape(1, -1)
        body = ",\n".join("    " + ", ".join(str(int(v)) for v in row) for row in rows)
        parts.append(f"static const {ctype} {key}{dims} = {{\n{body}\n}};\n")
    return "".join(parts)


def read_header(path: Path) -> dict[str, np.ndarray | int]:
    """The model of a generated header (for the numpy reference; no scikit-learn needed)."""
    text = Path(path).read_text()
    hidden = int(re.search(r"#define DIGITS_HIDDEN (\d+)", text).group(1))
    model: dict[str, np.ndarray | int] = {
        "SHIFT1": int(re.search(r"#define DIGITS_SHIFT1 (\d+)", text).group(1))}
    shapes = {"W1": (hidden, N_IN), "B1": (hidden,), "W2": (N_OUT, hidden), "B2": (N_OUT,)}
    for key, shape in shapes.items():
        body = re.search(r"\b%s\[[^=]*= \{(.*?)\};" % key, text, re.S).group(1)
        values = np.array([int(v) for v in body.replace("\n", " ").split(",")])
        model[key] = values.reshape(shape).astype(np.int8 if key[0] == "W" else np.int32)
    return model


def write_test_set(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """Write the held-out set: magic, u32 LE count N, N x 64 pixel bytes, N label bytes."""
    data = TEST_MAGIC + struct.pack("<I", len(labels)) + images.astype(np.uint8).tobytes() \
        + labels.astype(np.uint8).tobytes()
    Path(path).write_bytes(data)


def main(names: list[str]) -> None:
    """Train, quantize and write the named model headers (every one, and the test set, when
    none is named); print accuracies."""
    x_train, y_train, x_test, y_test = split()
    models = {name: quantize(train_float(x_train, y_train, hidden, epochs), x_train)
              for name, (hidden, epochs) in MODELS.items() if not names or name in names}
    if not names or "random" in names:
        models["random"] = random_model()
    for name, model in models.items():
        (HERE / f"digits_{name}_weights.h").write_text(header(name, model))
        accuracy = float(np.mean(forward(model, x_test) == y_test))
        print(f"digits_{name}: held-out accuracy {accuracy:.4f}")
    if not names:
        write_test_set(HERE / "digits_test.bin", x_test, y_test)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
