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
  torch_bench.py gpt_export DIR           fortunes as character ids, and a nanoGPT's initial weights
  torch_bench.py gpt_generate DIR         greedy decoding with a KV cache on gpt_export's model: 8-token
                                          prompts, 120 new tokens, batch 1 and 8; tokens/s
  torch_bench.py gpt_train DIR            nanoGPT (4 layers, 4 heads, d 128, context 128) on them:
                                          AdamW 3e-4, batch 32, BENCH_GPT_STEPS steps (default 300),
                                          the same random windows as neutrino's TokenWindows

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


# ---------------------------------------------------------------------------------------------
# gpt_train: a character-level nanoGPT on fortunes, against neutrino's train_language_model.
# Both start from the weights gpt_export writes (nanoGPT's init: N(0, 0.02), residual
# projections N(0, 0.02 / sqrt(2 L)), zero biases) and draw the same windows: TokenWindows's
# stream (data/token_shards.cpp) is rebuilt below.

GPT_LAYERS, GPT_HEADS, GPT_D, GPT_CONTEXT, GPT_BATCH = 4, 4, 128, 128, 32
GPT_SEED, GPT_EVAL_STEPS = 1337, 20
GPT_VAL_SEED_OFFSET = 0x9e3779b97f4a7c15  # lm_trainer.cpp's kValidationSeedOffset
MASK64 = (1 << 64) - 1


class Xoshiro:
    """core/random.cpp's Generator: xoshiro256** seeded by splitmix64."""

    def __init__(self, seed):
        self.s = []
        for _ in range(4):
            seed = (seed + 0x9e3779b97f4a7c15) & MASK64
            z = seed
            z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & MASK64
            z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & MASK64
            self.s.append(z ^ (z >> 31))

    def next_u64(self):
        s = self.s
        rotl = lambda x, k: ((x << k) | (x >> (64 - k))) & MASK64  # noqa: E731
        result = (rotl((s[1] * 5) & MASK64, 7) * 9) & MASK64
        t = (s[1] << 17) & MASK64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result

    def below(self, n):
        limit = MASK64 - MASK64 % n
        x = self.next_u64()
        while x >= limit:
            x = self.next_u64()
        return x % n


def window_start(seed, window, size, context):
    """TokenWindows::start_of."""
    z = (window * 0x9e3779b97f4a7c15 + 0x632be59bd9b4e019) & MASK64
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & MASK64
    return Xoshiro(seed ^ z ^ (z >> 31)).below(size - context)


def windows(tokens, seed, first, count):
    starts = [window_start(seed, k, len(tokens), GPT_CONTEXT) for k in range(first, first + count)]
    return torch.from_numpy(np.stack([tokens[s:s + GPT_CONTEXT + 1] for s in starts]))


class CausalSelfAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.c_attn = nn.Linear(GPT_D, 3 * GPT_D)
        self.c_proj = nn.Linear(GPT_D, GPT_D)
        self.register_buffer("mask", torch.tril(torch.ones(GPT_CONTEXT, GPT_CONTEXT, dtype=torch.bool)),
                             persistent=False)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.c_attn(x).split(d, dim=2)
        q, k, v = (z.view(b, t, GPT_HEADS, d // GPT_HEADS).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(d // GPT_HEADS))  # no SDPA in 1.13
        att = att.masked_fill(~self.mask[:t, :t], float("-inf")).softmax(dim=-1)
        return self.c_proj((att @ v).transpose(1, 2).contiguous().view(b, t, d))


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.c_fc = nn.Linear(GPT_D, 4 * GPT_D)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * GPT_D, GPT_D)

    def forward(self, x):
        return self.c_proj(self.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1 = nn.LayerNorm(GPT_D)
        self.attn = CausalSelfAttention()
        self.ln_2 = nn.LayerNorm(GPT_D)
        self.mlp = MLP()

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class NanoGPT(nn.Module):
    def __init__(self, vocab):
        super().__init__()
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(vocab, GPT_D), wpe=nn.Embedding(GPT_CONTEXT, GPT_D),
            h=nn.ModuleList([Block() for _ in range(GPT_LAYERS)]), ln_f=nn.LayerNorm(GPT_D)))
        self.lm_head = nn.Linear(GPT_D, vocab, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # tied, as nanoGPT
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * GPT_LAYERS))

    def forward(self, idx):
        t = idx.shape[1]
        x = self.transformer.wte(idx) + self.transformer.wpe(torch.arange(t))
        for block in self.transformer.h:
            x = block(x)
        return self.lm_head(self.transformer.ln_f(x))


def gpt_export_workload(out_dir):
    """English fortunes (the topic files), records joined by <eos> (3), ids as neutrino's char
    tokenizer numbers them (4 special ids, then the sorted code points); 90% train, 10% val."""
    os.makedirs(out_dir, exist_ok=True)
    records = [r.strip() for topic in TOPICS
               for r in fortune_records(os.path.join(FORTUNES_DIR, topic)) if r.strip()]
    vocab = sorted({c for r in records for c in r})
    index = {c: i + 4 for i, c in enumerate(vocab)}
    ids = []
    for i, r in enumerate(records):
        if i:
            ids.append(3)
        ids.extend(index[c] for c in r)
    ids = np.asarray(ids, dtype=np.int64)
    cut = len(ids) * 9 // 10
    np.save(os.path.join(out_dir, "gpt_train.npy"), ids[:cut])
    np.save(os.path.join(out_dir, "gpt_val.npy"), ids[cut:])
    torch.manual_seed(GPT_SEED)
    state = NanoGPT(len(vocab) + 4).state_dict()
    state.pop("lm_head.weight")  # the same tensor as transformer.wte.weight
    save_safetensors(state, os.path.join(out_dir, "gpt.safetensors"))
    log(f"exported {len(ids)} tokens ({len(vocab) + 4} ids) and the GPT to {out_dir}")


def gpt_lr(it, steps, warmup, max_lr, min_lr):
    """nanoGPT's get_lr (train::warmup_cosine_decay)."""
    if it < warmup:
        return max_lr * (it + 1) / (warmup + 1)
    if it >= steps:
        return min_lr
    ratio = (it - warmup) / (steps - warmup)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (max_lr - min_lr)


def gpt_train_workload(out_dir):
    train = np.load(os.path.join(out_dir, "gpt_train.npy"))
    val = np.load(os.path.join(out_dir, "gpt_val.npy"))
    weights = load_safetensors(os.path.join(out_dir, "gpt.safetensors"))
    model = NanoGPT(weights["transformer.wte.weight"].shape[0])
    weights["lm_head.weight"] = weights["transformer.wte.weight"]
    model.load_state_dict(weights)
    steps = int(os.environ.get("BENCH_GPT_STEPS", "300"))
    # nanoGPT's configure_optimizers: weight decay on the 2-D parameters only.
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=3e-4, betas=(0.9, 0.95), eps=1e-8)
    batches = [windows(train, GPT_SEED, i * GPT_BATCH, GPT_BATCH) for i in range(steps)]
    model.train()
    start = time.perf_counter()
    for it, w in enumerate(batches):
        for group in optimizer.param_groups:
            group["lr"] = gpt_lr(it, steps, 30, 3e-4, 3e-5)
        logits = model(w[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), w[:, 1:].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if (it + 1) % 50 == 0:
            log(f"gpt_train step {it + 1}: loss {loss.item():.4f}")
    elapsed = time.perf_counter() - start
    model.eval()
    val_windows = windows(val, (GPT_SEED + GPT_VAL_SEED_OFFSET) & MASK64, 0, GPT_EVAL_STEPS * GPT_BATCH)
    with torch.no_grad():
        losses = []
        for i in range(GPT_EVAL_STEPS):
            w = val_windows[i * GPT_BATCH:(i + 1) * GPT_BATCH]
            logits = model(w[:, :-1])
            losses.append(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), w[:, 1:].reshape(-1)).item())
    emit("gpt_train", steps * GPT_BATCH * GPT_CONTEXT / elapsed, "tokens/s", sum(losses) / len(losses))


# gpt_generate: greedy decoding with a KV cache (the loop HF-style code writes: each layer's keys
# and values concatenated step by step), 8-token prompts from the validation ids, 120 new tokens,
# batch 1 and 8; the same model and prompts as neutrino_bench gpt_generate.
GEN_PROMPT, GEN_NEW = 8, 120


def cached_step(model, idx, start, cache):
    t = idx.shape[1]
    x = model.transformer.wte(idx) + model.transformer.wpe(torch.arange(start, start + t))
    for i, block in enumerate(model.transformer.h):
        a = block.attn
        b, _, d = x.shape
        q, k, v = a.c_attn(block.ln_1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, GPT_HEADS, d // GPT_HEADS).transpose(1, 2) for z in (q, k, v))
        if cache[i] is not None:
            k, v = torch.cat([cache[i][0], k], dim=2), torch.cat([cache[i][1], v], dim=2)
        cache[i] = (k, v)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(d // GPT_HEADS))
        if t > 1:
            att = att.masked_fill(~a.mask[start:start + t, :start + t], float("-inf"))
        y = (att.softmax(dim=-1) @ v).transpose(1, 2).contiguous().view(b, t, d)
        x = x + a.c_proj(y)
        x = x + block.mlp(block.ln_2(x))
    return model.lm_head(model.transformer.ln_f(x[:, -1:, :]))


def gpt_generate_workload(out_dir):
    val = np.load(os.path.join(out_dir, "gpt_val.npy"))
    weights = load_safetensors(os.path.join(out_dir, "gpt.safetensors"))
    vocab = weights["transformer.wte.weight"].shape[0]
    model = NanoGPT(vocab)
    weights["lm_head.weight"] = weights["transformer.wte.weight"]
    model.load_state_dict(weights)
    model.eval()
    for batch in (1, 8):
        prompts = torch.from_numpy(np.stack([val[i * GEN_PROMPT:(i + 1) * GEN_PROMPT]
                                             for i in range(batch)]))

        def run():
            with torch.no_grad():
                cache = [None] * GPT_LAYERS
                logits = cached_step(model, prompts, 0, cache)
                out = []
                for step in range(GEN_NEW):
                    nxt = logits[:, -1, :].argmax(dim=-1, keepdim=True)
                    out.append(nxt)
                    if step + 1 < GEN_NEW:
                        logits = cached_step(model, nxt, GEN_PROMPT + step, cache)
                return torch.cat(out, dim=1)

        seconds = time_call(run, min_calls=3, min_seconds=2.0, warmup=1)
        emit(f"gpt_generate_b{batch}", batch * GEN_NEW / seconds, "tokens/s")


def main():
    global SYSTEM
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workload", choices=["mlp_train", "cnn_train", "export", "mlp_infer",
                                             "cnn_infer", "matmul", "xor", "lstm_export",
                                             "lstm_train", "gpt_export", "gpt_train",
                                             "gpt_generate"])
    parser.add_argument("dir", nargs="?", help="model directory (export, *_infer)")
    parser.add_argument("--out", help="model directory (same as the positional DIR)")
    parser.add_argument("--system", default="pytorch", help='"system" field (default pytorch)')
    args = parser.parse_args()
    SYSTEM = args.system
    out_dir = args.out or args.dir
    torch.set_num_threads(2)
    if args.workload in ("export", "mlp_infer", "cnn_infer", "lstm_export", "lstm_train",
                         "gpt_export", "gpt_train", "gpt_generate") \
            and not out_dir:
        parser.error(f"{args.workload} needs DIR (or --out DIR)")
    if args.workload == "gpt_export":
        gpt_export_workload(out_dir)
    elif args.workload == "gpt_train":
        gpt_train_workload(out_dir)
    elif args.workload == "gpt_generate":
        gpt_generate_workload(out_dir)
    elif args.workload == "lstm_export":
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
