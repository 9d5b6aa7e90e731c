#!/usr/bin/python3
"""PyTorch side of the neutrino benchmark (run with Debian's /usr/bin/python3, PyTorch 1.13).

Prints one JSON object per line on stdout and nothing else (logs go to stderr):
{"system", "workload", "value", "unit", "rss_mb", "loss", "accuracy", "max_abs_diff"}

  torch_bench.py mlp_train|cnn_train      Fashion-MNIST, Adam, batch 128 (BENCH_EPOCHS, default 1)
  torch_bench.py export DIR               ONNX + safetensors weights, inputs and reference outputs
  torch_bench.py mlp_infer|cnn_infer DIR  batch-1 latency and batch-256 throughput on DIR's weights
  torch_bench.py matmul                   fp32 GFLOP/s at n = 256, 512, 1024, 2048
  torch_bench.py xor                      2-3-1 sigmoid network, microseconds per full-batch epoch
  torch_bench.py lstm_export DIR          fortune topics as character ids, and the LSTM's weights
  torch_bench.py lstm_train DIR           one epoch of Embedding(64)-LSTM(128)-Linear on them, batch 64

DIR may also be given as --out DIR. --system NAME sets the "system" field (default "pytorch"; the
caller passes "pytorch-tuned" when it set OMP_WAIT_POLICY=PASSIVE and OPENBLAS_CORETYPE).
"""

import argparse
import gzip
import json
import math
import os
import resource
import struct
import sys
import time

# Keep stdout for the JSON lines only: fd 1 is pointed at stderr for everything else (Python
# prints and anything torch's C++ side writes, e.g. during ONNX export).
_JSON_OUT = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

DATA_DIR = os.environ.get("BENCH_FASHION_MNIST", "/usr/share/datasets/fashion-mnist")
SYSTEM = "pytorch"


def log(*args):
    print("torch_bench:", *args, file=sys.stderr, flush=True)


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _num(v):
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def emit(workload, value, unit, loss=None, accuracy=None, max_abs_diff=None):
    record = {"system": SYSTEM, "workload": workload, "value": _num(value), "unit": unit,
              "rss_mb": round(peak_rss_mb(), 1), "loss": _num(loss), "accuracy": _num(accuracy),
              "max_abs_diff": _num(max_abs_diff)}
    _JSON_OUT.write(json.dumps(record) + "\n")
    _JSON_OUT.flush()


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


def time_call(call, min_calls, min_seconds=0.5, warmup=3):
    """Median seconds per call, repeating until both min_calls and min_seconds are reached."""
    for _ in range(warmup):
        call()
    times = []
    start = time.perf_counter()
    while len(times) < min_calls or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return median(times)


# ---------------------------------------------------------------------------------------------
# Data

def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic, count = struct.unpack(">II", raw[:8])
    if magic == 2049:  # labels
        return np.frombuffer(raw, dtype=np.uint8, offset=8, count=count)
    if magic == 2051:  # images
        rows, cols = struct.unpack(">II", raw[8:16])
        return np.frombuffer(raw, dtype=np.uint8, offset=16, count=count * rows * cols).reshape(
            count, rows, cols)
    raise ValueError(f"{path}: not an IDX file (magic {magic})")


def load_fashion_mnist(split, conv):
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(os.path.join(DATA_DIR, f"{prefix}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(DATA_DIR, f"{prefix}-labels-idx1-ubyte.gz"))
    x = images.astype(np.float32)
    x /= np.float32(255.0)  # in place: one float copy of the set at a time (peak RSS)
    x = x.reshape(len(x), 1, 28, 28) if conv else x.reshape(len(x), 784)
    return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(labels.astype(np.int64))


# ---------------------------------------------------------------------------------------------
# Models (attribute names become the weight names: fc1.weight, conv1.bias, ...)

class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 256)
        self.fc2 = nn.Linear(256, 128)
        self.fc3 = nn.Linear(128, 10)

    def forward(self, x):
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = nn.Linear(64 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc2(F.relu(self.fc1(x)))


def build(name):
    return {"mlp": MLP, "cnn": CNN}[name]()


# ---------------------------------------------------------------------------------------------
# safetensors (written and read by hand; only F32)

def save_safetensors(state_dict, path):
    header, blobs, offset = {}, [], 0
    for name in sorted(state_dict):
        array = state_dict[name].detach().to(torch.float32).contiguous().numpy()
        blob = array.astype("<f4", copy=False).tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def load_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + size])
    base = 8 + size
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            raise ValueError(f"{path}: {name} has dtype {info['dtype']}, only F32 is read")
        begin, end = info["data_offsets"]
        array = np.frombuffer(raw[base + begin:base + end], dtype="<f4").reshape(info["shape"])
        tensors[name] = torch.from_numpy(array.copy())
    return tensors


# ---------------------------------------------------------------------------------------------
# Workloads

def train_workload(kind):
    conv = kind == "cnn"
    torch.manual_seed(0)
    x, y = load_fashion_mnist("train", conv)
    xt, yt = load_fashion_mnist("test", conv)
    model = build(kind)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    criterion = nn.CrossEntropyLoss()
    epochs = max(1, int(os.environ.get("BENCH_EPOCHS", "1")))
    generator = torch.Generator().manual_seed(0)
    n, batch = x.shape[0], 128
    model.train()
    start = time.perf_counter()
    for epoch in range(epochs):
        order = torch.randperm(n, generator=generator)
        for i in range(0, n, batch):
            index = order[i:i + batch]
            optimizer.zero_grad(set_to_none=True)
            loss = criterion(model(x[index]), y[index])
            loss.backward()
            optimizer.step()
        log(f"{kind}_train epoch {epoch + 1}/{epochs}: last batch loss {loss.item():.4f}")
    elapsed = time.perf_counter() - start
    model.eval()
    total_loss, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, xt.shape[0], 1000):
            logits = model(xt[i:i + 1000])
            total_loss += F.cross_entropy(logits, yt[i:i + 1000], reduction="sum").item()
            correct += (logits.argmax(1) == yt[i:i + 1000]).sum().item()
    emit(f"{kind}_train", n * epochs / elapsed, "samples/s", total_loss / xt.shape[0],
         correct / xt.shape[0])


def export_workload(out_dir):
    import warnings
    warnings.filterwarnings("ignore")
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(0)
    models = {"mlp": MLP(), "cnn": CNN()}
    for kind, model in models.items():
        model.eval()
        x, _ = load_fashion_mnist("test", kind == "cnn")
        x = x[:256].contiguous()
        with torch.no_grad():
            y = model(x)
        save_safetensors(model.state_dict(), os.path.join(out_dir, f"{kind}.safetensors"))
        np.save(os.path.join(out_dir, f"infer_{kind}_x.npy"), x.numpy())
        np.save(os.path.join(out_dir, f"infer_{kind}_y.npy"), y.numpy())
        torch.onnx.export(model, x[:1], os.path.join(out_dir, f"{kind}.onnx"), opset_version=13,
                          input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
        log(f"exported {kind} to {out_dir}")


def infer_workload(kind, out_dir):
    model = build(kind)
    model.load_state_dict(load_safetensors(os.path.join(out_dir, f"{kind}.safetensors")))
    model.eval()
    x = torch.from_numpy(np.load(os.path.join(out_dir, f"infer_{kind}_x.npy")))
    expected = np.load(os.path.join(out_dir, f"infer_{kind}_y.npy"))
    one = x[:1].contiguous()
    with torch.no_grad():
        diff = float(np.max(np.abs(model(x).numpy() - expected)))
        b1 = time_call(lambda: model(one), 500 if kind == "cnn" else 2000, warmup=50)
        emit(f"{kind}_infer_b1", b1 * 1e6, "us", max_abs_diff=diff)
        b256 = time_call(lambda: model(x), 50, warmup=5)
        emit(f"{kind}_infer_b256", x.shape[0] / b256, "images/s", max_abs_diff=diff)


def matmul_workload():
    torch.manual_seed(1)
    for n in (256, 512, 1024, 2048):
        a, b = torch.randn(n, n), torch.randn(n, n)
        t = time_call(lambda: torch.matmul(a, b), 5)
        emit(f"matmul_{n}", 2.0 * n ** 3 / t / 1e9, "GFLOP/s")


def xor_workload():
    torch.manual_seed(42)
    x = torch.tensor([[0., 0.], [0., 1.], [1., 0.], [1., 1.]])
    y = torch.tensor([[0.], [1.], [1.], [0.]])
    model = nn.Sequential(nn.Linear(2, 3), nn.Sigmoid(), nn.Linear(3, 1), nn.Sigmoid())
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    criterion = nn.BCELoss()
    epochs = 1000
    start = time.perf_counter()
    for _ in range(epochs):
        optimizer.zero_grad(set_to_none=True)
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
    elapsed = time.perf_counter() - start
    with torch.no_grad():
        out = model(x)
        loss = criterion(out, y).item()
        accuracy = ((out > 0.5).float() == y).float().mean().item()
    emit("xor", elapsed / epochs * 1e6, "us/epoch", loss, accuracy)


# ---------------------------------------------------------------------------------------------
# LSTM text classification: the 6-topic fortune task, as character ids padded to 128 steps.
# Both systems train from the same exported ids, order and initial weights, so their losses
# after the epoch should agree.

FORTUNES_DIR = os.environ.get("BENCH_FORTUNES", "/usr/share/games/fortunes")
TOPICS = ["computers", "science", "politics", "love", "food", "sports"]
LSTM_STEPS, LSTM_BATCH = 128, 64


def fortune_records(path):
    import re
    with open(path, encoding="utf-8") as f:
        text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", f.read())
    records, lines = [], []
    for line in text.split("\n") + ["%"]:
        if line == "%":
            if "\n".join(lines).strip():
                records.append("\n".join(lines))
            lines = []
        else:
            lines.append(line)
    return records


class TopicLSTM(nn.Module):
    def __init__(self, vocab):
        super().__init__()
        self.embedding = nn.Embedding(vocab, 64)
        self.lstm = nn.LSTM(64, 128, batch_first=True)
        self.fc = nn.Linear(128, len(TOPICS))

    def forward(self, x):
        _, (h, _) = self.lstm(self.embedding(x))
        return self.fc(h[-1])


def lstm_export_workload(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    texts, labels = [], []
    for label, topic in enumerate(TOPICS):
        for record in fortune_records(os.path.join(FORTUNES_DIR, topic)):
            texts.append(record)
            labels.append(label)
    vocab = sorted({c for t in texts for c in t})
    index = {c: i + 1 for i, c in enumerate(vocab)}  # 0 pads
    x = np.zeros((len(texts), LSTM_STEPS), dtype=np.int64)
    for row, text in enumerate(texts):
        ids = [index[c] for c in text[:LSTM_STEPS]]
        x[row, :len(ids)] = ids
    order = np.random.RandomState(0).permutation(len(texts))
    np.save(os.path.join(out_dir, "lstm_x.npy"), x[order])
    np.save(os.path.join(out_dir, "lstm_y.npy"), np.asarray(labels, dtype=np.int64)[order])
    torch.manual_seed(0)
    save_safetensors(TopicLSTM(len(vocab) + 1).state_dict(), os.path.join(out_dir, "lstm.safetensors"))
    log(f"exported {len(texts)} fortunes, {len(vocab) + 1} ids, to {out_dir}")


def lstm_train_workload(out_dir):
    x = torch.from_numpy(np.load(os.path.join(out_dir, "lstm_x.npy")))
    y = torch.from_numpy(np.load(os.path.join(out_dir, "lstm_y.npy")))
    weights = load_safetensors(os.path.join(out_dir, "lstm.safetensors"))
    model = TopicLSTM(weights["embedding.weight"].shape[0])
    model.load_state_dict(weights)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    criterion = nn.CrossEntropyLoss()
    model.train()
    start = time.perf_counter()
    for i in range(0, x.shape[0], LSTM_BATCH):
        optimizer.zero_grad(set_to_none=True)
        loss = criterion(model(x[i:i + LSTM_BATCH]), y[i:i + LSTM_BATCH])
        loss.backward()
        optimizer.step()
    elapsed = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(x[i:i + 256]) for i in range(0, x.shape[0], 256)])
        loss = F.cross_entropy(logits, y).item()
        accuracy = (logits.argmax(1) == y).float().mean().item()
    emit("lstm_train", x.numel() / elapsed, "tokens/s", loss, accuracy)


def main():
    global SYSTEM
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workload", choices=["mlp_train", "cnn_train", "export", "mlp_infer",
                                             "cnn_infer", "matmul", "xor", "lstm_export",
                                             "lstm_train"])
    parser.add_argument("dir", nargs="?", help="model directory (export, *_infer)")
    parser.add_argument("--out", help="model directory (same as the positional DIR)")
    parser.add_argument("--system", default="pytorch", help='"system" field (default pytorch)')
    args = parser.parse_args()
    SYSTEM = args.system
    out_dir = args.out or args.dir
    torch.set_num_threads(2)
    if args.workload in ("export", "mlp_infer", "cnn_infer", "lstm_export", "lstm_train") \
            and not out_dir:
        parser.error(f"{args.workload} needs DIR (or --out DIR)")
    if args.workload == "lstm_export":
        lstm_export_workload(out_dir)
    elif args.workload == "lstm_train":
        lstm_train_workload(out_dir)
    elif args.workload.endswith("_train"):
        train_workload(args.workload[:3])
    elif args.workload == "export":
        export_workload(out_dir)
    elif args.workload.endswith("_infer"):
        infer_workload(args.workload[:3], out_dir)
    elif args.workload == "matmul":
        matmul_workload()
    elif args.workload == "xor":
        xor_workload()
    return 0


if __name__ == "__main__":
    sys.exit(main())
