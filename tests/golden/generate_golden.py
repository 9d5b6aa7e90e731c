#!/usr/bin/python3
"""Generate golden reference files (safetensors) for neutrino's C++ tests.

Usage:
    /usr/bin/python3 tests/golden/generate_golden.py tests/golden/data

Requires PyTorch (tested with Debian's python3-torch 1.13). The safetensors
format is written by hand (no `safetensors` Python package needed).
See tests/golden/README.md for the file conventions.
"""

import glob
import json
import os
import struct
import sys
import zlib

import torch
import torch.nn as nn
import torch.nn.functional as F

F64 = torch.float64

# ---------------------------------------------------------------------------
# safetensors writer
# ---------------------------------------------------------------------------

_DTYPES = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.int64: "I64",
    torch.uint8: "U8",
}


def write_safetensors(path, tensors, metadata):
    """tensors: dict name -> torch.Tensor; metadata: dict str -> str."""
    header = {}
    chunks = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        if t.dtype not in _DTYPES:
            raise TypeError(f"{name}: unsupported dtype {t.dtype}")
        data = t.numpy().tobytes()  # C order, little-endian on x86
        header[name] = {
            "dtype": _DTYPES[t.dtype],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        chunks.append(data)
        offset += len(data)
    for k, v in metadata.items():
        assert isinstance(k, str) and isinstance(v, str)
    header["__metadata__"] = dict(metadata)
    hbytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    pad = (-(8 + len(hbytes))) % 8
    hbytes += b" " * pad
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hbytes)))
        f.write(hbytes)
        for c in chunks:
            f.write(c)


# ---------------------------------------------------------------------------
# the op table (tests/op_table.json, which the C++ tests read too)
# ---------------------------------------------------------------------------

TABLE_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "op_table.json")
DEFAULT_CHECKS = ["grad", "golden"]


def load_cases():
    """Every case of the table as (case, op entry), in table order."""
    with open(TABLE_PATH) as f:
        table = json.load(f)
    cases = []
    for entry in table["ops"]:
        for c in entry["cases"]:
            cases.append((c, entry))
    names = [c["name"] for c, _ in cases]
    dup = {n for n in names if names.count(n) > 1}
    assert not dup, f"duplicate case names: {dup}"
    return cases


def checks_of(c, entry):
    return c.get("checks", entry.get("checks", DEFAULT_CHECKS))


def make_input(spec):
    """One input as the spec says (README: the fields); floats are float64."""
    shape = spec["shape"]
    dtype = spec.get("dtype", "float")
    n = 1
    for s in shape:
        n *= s
    if "values" in spec:
        torch_dtype = {"float": F64, "int64": torch.int64, "bool": torch.bool}[dtype]
        return torch.tensor(spec["values"], dtype=torch_dtype).reshape(shape)
    if dtype == "int64":
        lo, hi = spec["range"]
        return torch.randint(lo, hi, shape, dtype=torch.int64)
    if dtype == "bool":
        return torch.rand(shape) < spec.get("p", 0.5)
    fill = spec.get("fill", "randn")
    if fill == "randn":
        return torch.randn(shape, dtype=F64) * spec.get("std", 1.0) + spec.get("mean", 0.0)
    lo, hi = spec["range"]
    if fill == "uniform":
        return torch.rand(shape, dtype=F64) * (hi - lo) + lo
    if fill == "signed":
        mag = torch.rand(shape, dtype=F64) * (hi - lo) + lo
        return torch.where(torch.rand(shape) < 0.5, -mag, mag)
    if fill == "spaced":
        # n distinct values, one per step of (hi - lo) / n, at `phase` of the step with a jitter of
        # +-0.1 step, in random order: no ties, and no value near a step boundary (0, for a
        # symmetric range and an even count).
        step = (hi - lo) / n
        jitter = 0.2 * (torch.rand(n, dtype=F64) - 0.5)
        v = lo + (torch.arange(n, dtype=F64) + spec.get("phase", 0.5) + jitter) * step
        return v[torch.randperm(n)].reshape(shape)
    raise ValueError(f"unknown fill {fill}")


# Helpers the table's torch expressions call (x: the inputs, a: the case's attrs).

def reduce(fn, x, a):
    dims = a.get("dims") or list(range(x.dim()))  # empty: every dim
    return fn(x, dim=dims, keepdim=a.get("keepdim", False))


def sum_to(x, shape):
    return x.sum() if not shape else x.sum_to_size(shape)


def slice_(x, a):
    d = a["dim"] % x.dim()
    index = (slice(None),) * d + (slice(a["start"], a["end"], a.get("step", 1)),)
    return x[index]


def pads(a):
    """[top, left, bottom, right] as F.pad wants it: (left, right, top, bottom)."""
    t, l, b, r = a.get("padding", [0, 0, 0, 0])
    return (l, r, t, b)


def linear(x, a):
    y = F.linear(x[0], x[1], x[2] if len(x) > 2 else None)
    return F.relu(y) if a.get("epilogue") == "relu" else y


def conv2d(x, a):
    y = F.conv2d(F.pad(x[0], pads(a)), x[1], x[2] if len(x) > 2 else None,
                 stride=a.get("stride", [1, 1]), dilation=a.get("dilation", [1, 1]),
                 groups=a.get("groups", 1))
    return F.relu(y) if a.get("epilogue") == "relu" else y


def max_pool2d(x, a):
    padded = F.pad(x, pads(a), value=float("-inf"))
    return F.max_pool2d(padded, a.get("kernel", [2, 2]), a.get("stride", [2, 2]))


def avg_pool2d(x, a):
    k, s = a.get("kernel", [2, 2]), a.get("stride", [2, 2])
    total = F.avg_pool2d(F.pad(x, pads(a)), k, s)
    if a.get("count_include_pad", True):
        return total
    # The mean over the window's real pixels: divide by the share of them in each window.
    share = F.avg_pool2d(F.pad(torch.ones_like(x), pads(a)), k, s)
    return total / share


def batch_norm(x, a):
    w, b, rm, rv = (list(x[1:]) + [None] * 4)[:4]
    return F.batch_norm(x[0], rm, rv, w, b, training=a["training"], momentum=0.1, eps=1e-5)


def rnn(x, a):
    """One layer and direction of torch's RNN/LSTM/GRU (batch_first) with the table's inputs
    [x, w_ih, w_hh, (b_ih, b_hh), (h0)]; the reverse direction runs on the time-flipped input.
    Returns (output, h_n) or, for an LSTM, (output, h_n, c_n), batch first."""
    cell, bias = a["cell"], a.get("bias", True)
    xs, hidden = x[0], x[2].shape[1]
    weights = list(x[1:5] if bias else x[1:3])
    k = 5 if bias else 3
    state = hidden * (2 if cell == "lstm" else 1)
    h0 = x[k] if a.get("h0") else torch.zeros(xs.shape[0], state, dtype=xs.dtype)
    if a.get("reverse"):
        xs = xs.flip(1)
    args = (weights, bias, 1, 0.0, False, False, True)
    if cell == "lstm":
        hx = (h0[:, :hidden].unsqueeze(0).contiguous(), h0[:, hidden:].unsqueeze(0).contiguous())
        out, h, c = torch._VF.lstm(xs, hx, *args)
        states = (h[0], c[0])
    else:
        fn = {"gru": torch._VF.gru, "tanh": torch._VF.rnn_tanh, "relu": torch._VF.rnn_relu}[cell]
        out, h = fn(xs, h0.unsqueeze(0).contiguous(), *args)
        states = (h[0],)
    if a.get("reverse"):
        out = out.flip(1)
    return (out,) + states


def rms_norm(x, eps):
    y = x[0] * torch.rsqrt(x[0].pow(2).mean(-1, keepdim=True) + eps)
    return y * x[1] if len(x) > 1 else y


def rotary(x, a):
    """Rotate-half RoPE (GPT-NeoX, HF LLaMA): pairs (i, i + D/2) by (offset + t) * base^(-2i/D)."""
    d, half = x.shape[-1], x.shape[-1] // 2
    pos = torch.arange(x.shape[2], dtype=F64) + a.get("offset", 0)
    inv_freq = a.get("base", 10000.0) ** (-torch.arange(0, d, 2, dtype=F64) / d)
    angle = pos[:, None] * inv_freq[None, :]
    cos = torch.cat([angle.cos(), angle.cos()], -1).to(x.dtype)
    sin = torch.cat([angle.sin(), angle.sin()], -1).to(x.dtype)
    rotated = torch.cat([-x[..., half:], x[..., :half]], -1)
    return x * cos + rotated * sin


def sdpa(x, a):
    """softmax(q k^T * scale, masked) v written out (torch 1.13 has no F.scaled_dot_product_attention):
    causal keeps key j for query i where j <= i + Tk - Tq (aligned to the last key), x[3] is an
    optional bool mask (true: attend)."""
    q, k, v = x[0], x[1], x[2]
    tq, tk = q.shape[2], k.shape[2]
    scale = a.get("scale") or q.shape[-1] ** -0.5
    allowed = torch.ones(tq, tk, dtype=torch.bool)
    if a.get("causal"):
        allowed = allowed.tril(tk - tq)
    if len(x) > 3:
        allowed = allowed & x[3]
    scores = (q @ k.transpose(-2, -1) * scale).masked_fill(~allowed, float("-inf"))
    return scores.softmax(-1) @ v


EPS = 1e-7  # Keras's epsilon, which neutrino's probability losses clip to


def bce(p, t, a):
    if a["from_logits"]:
        return F.binary_cross_entropy_with_logits(p, t)
    return F.binary_cross_entropy(torch.clamp(p, EPS, 1 - EPS), t)


def cce(z, t, a):
    if a["from_logits"]:
        log_p = F.log_softmax(z, dim=-1)
    else:
        log_p = torch.log(torch.clamp(z / z.sum(-1, keepdim=True), EPS, 1 - EPS))
    return -(t * log_p).sum(-1).mean()


def scce(z, labels, a):
    labels = labels.reshape(-1).long()
    if a["from_logits"]:
        return F.cross_entropy(z, labels)
    return F.nll_loss(torch.log(torch.clamp(z, EPS, 1 - EPS)), labels)


def case_seed(name):
    return zlib.crc32(name.encode("utf-8")) & 0x7FFFFFFF


def as_stored(t):
    """bool tensors are stored as U8 0/1."""
    t = t.detach()
    return t.to(torch.uint8) if t.dtype == torch.bool else t


def run_op_case(outdir, c, entry):
    name = c["name"]
    torch.manual_seed(case_seed(name))
    specs = c["inputs"]
    inputs = [make_input(s) for s in specs]
    diff = [i for i, (s, t) in enumerate(zip(specs, inputs))
            if t.dtype == F64 and s.get("grad", True)]
    leaves = [t.detach().clone().requires_grad_(i in diff) for i, t in enumerate(inputs)]
    expression = c.get("torch", entry["torch"])
    scope = dict(globals(), x=leaves, a=c.get("attrs", {}))
    res = eval(expression, scope)  # noqa: S307 (the table is ours)
    outs = list(res) if isinstance(res, (tuple, list)) else [res]

    tensors = {f"in{i}": as_stored(t) for i, t in enumerate(inputs)}
    # Inputs that the op updated in place (batch_norm's running statistics).
    for i, (before, after) in enumerate(zip(inputs, leaves)):
        if i not in diff and before.dtype == F64 and not torch.equal(before, after.detach()):
            tensors[f"in{i}_after"] = after.detach().clone()
    grad_outs, float_outs = [], []
    for k, out in enumerate(outs):
        tensors[f"out{k}"] = as_stored(out)
        if out.dtype == F64 and out.requires_grad:
            g = torch.randn(out.shape, dtype=F64)
            tensors[f"grad_out{k}"] = g
            grad_outs.append(g)
            float_outs.append(out)
    if float_outs and diff:
        grads = torch.autograd.grad(float_outs, [leaves[i] for i in diff], grad_outs,
                                    allow_unused=True)
        for i, g in zip(diff, grads):
            tensors[f"grad_in{i}"] = torch.zeros_like(inputs[i]) if g is None else g
    meta = {"op": entry["op"], "case": name, "attrs": json.dumps(c.get("attrs", {})),
            "torch": expression}
    write_safetensors(os.path.join(outdir, f"op_{name}.safetensors"), tensors, meta)


# ---------------------------------------------------------------------------
# training traces (float32)
# ---------------------------------------------------------------------------

class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(12, 16)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(16, 3)

    def forward(self, x):
        return self.fc2(self.relu(self.fc1(x)))


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        return self.fc1(self.flatten(self.pool(self.relu(self.conv1(x)))))


MODELS = {
    "mlp": (MLP, (8, 12)),
    "cnn": (CNN, (8, 1, 8, 8)),
}

OPTIMIZERS = {
    "sgd": (lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
            {"lr": 0.1, "momentum": 0.9}),
    "adam": (lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.9, 0.999), eps=1e-7),
             {"lr": 0.01, "betas": [0.9, 0.999], "eps": 1e-7}),
}

TRAIN_STEPS = 10


def run_train_case(outdir, model_name, opt_name):
    torch.manual_seed(0)
    cls, xshape = MODELS[model_name]
    model = cls().float()
    make_opt, opt_attrs = OPTIMIZERS[opt_name]
    opt = make_opt(model.parameters())

    tensors = {}
    for k, v in model.state_dict().items():
        tensors[k] = v.detach().clone()
    losses = []
    for step in range(TRAIN_STEPS):
        x = torch.randn(*xshape, dtype=torch.float32)
        y = torch.randint(0, 3, (xshape[0],), dtype=torch.int64)
        tensors[f"x{step}"] = x
        tensors[f"y{step}"] = y
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        losses.append(loss.item())
        loss.backward()
        opt.step()
    tensors["losses"] = torch.tensor(losses, dtype=F64)
    for k, v in model.state_dict().items():
        tensors[f"final.{k}"] = v.detach().clone()
    meta = {"model": model_name, "optimizer": opt_name, "attrs": json.dumps(opt_attrs)}
    write_safetensors(os.path.join(outdir, f"train_{model_name}_{opt_name}.safetensors"),
                      tensors, meta)


# ---------------------------------------------------------------------------
# sequence layers (float64): nn.LSTM / nn.GRU / nn.RNN / nn.Conv1d and masked pooling, read by
# tests/test_sequence_layers.cpp, which loads the same weights into neutrino's layers
# ---------------------------------------------------------------------------

def seq_write(outdir, case, tensors, meta):
    meta = dict(meta, case=case)
    write_safetensors(os.path.join(outdir, f"seq_{case}.safetensors"), tensors, meta)


def seq_loss_grads(out, leaves, tensors):
    """r = randn like out; writes r and grad.<name> = d sum(out * r) / d leaf for every leaf."""
    r = torch.randn(out.shape, dtype=F64)
    tensors["r"] = r
    grads = torch.autograd.grad((out * r).sum(), list(leaves.values()), allow_unused=True)
    for (name, leaf), g in zip(leaves.items(), grads):
        tensors[f"grad.{name}"] = torch.zeros_like(leaf) if g is None else g


def seq_recurrent_case(outdir, case, kind, batch, steps, features, hidden, layers=1,
                       bidirectional=False, last_only=False, flip=False):
    """A torch recurrent module (batch_first, float64); the file holds x, its state dict under
    the torch names, out (the output sequence, or its last step when last_only), h_n (and c_n),
    r and the gradients of sum(out * r) for x and every weight."""
    torch.manual_seed(case_seed("seq_" + case))
    cls = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[kind]
    module = cls(features, hidden, num_layers=layers, bidirectional=bidirectional,
                 batch_first=True).double()
    x = torch.randn(batch, steps, features, dtype=F64)
    leaves = {"x": x.clone().requires_grad_(True)}
    leaves.update(dict(module.named_parameters()))
    xs = leaves["x"].flip(1) if flip else leaves["x"]
    out, state = module(xs)
    h_n, c_n = state if kind == "lstm" else (state, None)
    if last_only:
        out = out[:, -1]
    tensors = {"x": x, "out": out.detach(), "h_n": h_n.detach()}
    if c_n is not None:
        tensors["c_n"] = c_n.detach()
    for name, p in module.named_parameters():
        tensors[name] = p.detach().clone()
    seq_loss_grads(out, leaves, tensors)
    meta = {"module": repr(module), "last_only": str(last_only).lower(),
            "flip": str(flip).lower()}
    seq_write(outdir, case, tensors, meta)


def keras_same_pads(steps, kernel, stride, dilation):
    """Keras's 'same': ceil(steps / stride) outputs, the extra padding step at the end."""
    out = -(-steps // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - steps, 0)
    return total // 2, total - total // 2


def seq_conv1d_case(outdir, case, batch, steps, channels, filters, kernel, padding="valid",
                    stride=1, dilation=1, activation=""):
    """nn.Conv1d on (N, C, T), the input and output stored Keras-style as (N, T, C)."""
    torch.manual_seed(case_seed("seq_" + case))
    conv = nn.Conv1d(channels, filters, kernel, stride=stride, dilation=dilation).double()
    x = torch.randn(batch, steps, channels, dtype=F64)
    leaves = {"x": x.clone().requires_grad_(True), "weight": conv.weight, "bias": conv.bias}
    xc = leaves["x"].permute(0, 2, 1)
    if padding == "same":
        xc = F.pad(xc, keras_same_pads(steps, kernel, stride, dilation))
    elif padding == "causal":
        xc = F.pad(xc, ((kernel - 1) * dilation, 0))
    out = conv(xc).permute(0, 2, 1)
    if activation == "relu":
        out = F.relu(out)
    tensors = {"x": x, "weight": conv.weight.detach().clone(), "bias": conv.bias.detach().clone(),
               "out": out.detach()}
    seq_loss_grads(out, leaves, tensors)
    attrs = {"filters": filters, "kernel_size": kernel, "padding": padding, "strides": stride,
             "dilation_rate": dilation, "activation": activation}
    seq_write(outdir, case, tensors, {"attrs": json.dumps(attrs)})


def seq_max_pool1d_case(outdir, case, batch, steps, channels, pool, stride, padding="valid"):
    """F.max_pool1d; 'same' pads as Keras with -inf (padding never wins)."""
    torch.manual_seed(case_seed("seq_" + case))
    x = torch.randn(batch, steps, channels, dtype=F64)
    leaves = {"x": x.clone().requires_grad_(True)}
    xc = leaves["x"].permute(0, 2, 1)
    if padding == "same":
        xc = F.pad(xc, keras_same_pads(steps, pool, stride, 1), value=float("-inf"))
    out = F.max_pool1d(xc, pool, stride).permute(0, 2, 1)
    tensors = {"x": x, "out": out.detach()}
    seq_loss_grads(out, leaves, tensors)
    attrs = {"pool_size": pool, "strides": stride, "padding": padding}
    seq_write(outdir, case, tensors, {"attrs": json.dumps(attrs)})


def seq_masked_pool_case(outdir, case):
    """Global average and max pooling over the steps a mask keeps (a sample with none: zeros)."""
    torch.manual_seed(case_seed("seq_" + case))
    x = torch.randn(4, 6, 3, dtype=F64)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [0, 1, 0, 1, 1, 0],
                         [0, 0, 0, 0, 0, 0]], dtype=torch.bool)
    tensors = {"x": x, "mask": mask.to(torch.uint8)}
    m = mask.to(F64).unsqueeze(-1)
    for kind in ("avg", "max"):
        leaf = x.clone().requires_grad_(True)
        if kind == "avg":
            out = (leaf * m).sum(1) / m.sum(1).clamp(min=1)
        else:
            best = leaf.masked_fill(~mask.unsqueeze(-1), float("-inf")).max(1).values
            out = torch.where(mask.any(1, keepdim=True), best, torch.zeros_like(best))
        r = torch.randn(out.shape, dtype=F64)
        (g,) = torch.autograd.grad((out * r).sum(), [leaf])
        tensors.update({f"out_{kind}": out.detach(), f"r_{kind}": r, f"grad_{kind}.x": g})
    seq_write(outdir, case, tensors, {})


def seq_embedding_case(outdir, case, kind, bidirectional):
    """Embedding(mask_zero) -> LSTM/GRU over ids padded with trailing zeros: out is torch's final
    state of each sample run alone on its unpadded ids (forward h_n, then the reverse one's)."""
    torch.manual_seed(case_seed("seq_" + case))
    vocab, dim, hidden, steps = 7, 3, 4, 6
    lengths = [6, 3, 1, 4]
    embedding = nn.Embedding(vocab, dim).double()
    cls = {"lstm": nn.LSTM, "gru": nn.GRU}[kind]
    rnn_module = cls(dim, hidden, batch_first=True, bidirectional=bidirectional).double()
    ids = torch.zeros(len(lengths), steps, dtype=torch.int64)
    for n, length in enumerate(lengths):
        ids[n, :length] = torch.randint(1, vocab, (length,))
    outs = []
    for n, length in enumerate(lengths):
        _, state = rnn_module(embedding(ids[n:n + 1, :length]))
        h_n = state[0] if kind == "lstm" else state
        outs.append(torch.cat(list(h_n[:, 0]), -1))  # (directions * hidden)
    out = torch.stack(outs)
    leaves = {"embedding.weight": embedding.weight}
    leaves.update({f"rnn.{k}": v for k, v in rnn_module.named_parameters()})
    tensors = {"ids": ids, "lengths": torch.tensor(lengths, dtype=torch.int64), "out": out.detach()}
    for name, leaf in leaves.items():
        tensors[name] = leaf.detach().clone()
    seq_loss_grads(out, leaves, tensors)
    seq_write(outdir, case, tensors, {"module": repr(rnn_module)})


def run_seq_cases(outdir):
    """Returns the number of files written."""
    cases = [
        lambda: seq_recurrent_case(outdir, "lstm_bi2", "lstm", 3, 9, 4, 5, layers=2,
                                   bidirectional=True),
        lambda: seq_recurrent_case(outdir, "gru_bi", "gru", 3, 7, 4, 5, bidirectional=True),
        lambda: seq_recurrent_case(outdir, "rnn_tanh2", "rnn", 3, 7, 4, 5, layers=2),
        lambda: seq_recurrent_case(outdir, "lstm_last", "lstm", 3, 8, 4, 5, last_only=True),
        lambda: seq_recurrent_case(outdir, "lstm_long", "lstm", 2, 64, 3, 6),
        lambda: seq_recurrent_case(outdir, "lstm_backwards", "lstm", 2, 6, 3, 4, flip=True),
        lambda: seq_conv1d_case(outdir, "conv1d_valid", 2, 9, 3, 4, 3),
        lambda: seq_conv1d_case(outdir, "conv1d_same", 2, 9, 3, 4, 5, padding="same"),
        lambda: seq_conv1d_case(outdir, "conv1d_same_even_stride2", 2, 9, 3, 4, 4,
                                padding="same", stride=2),
        lambda: seq_conv1d_case(outdir, "conv1d_causal", 2, 9, 3, 4, 3, padding="causal"),
        lambda: seq_conv1d_case(outdir, "conv1d_causal_dilation2", 2, 9, 3, 4, 3,
                                padding="causal", dilation=2),
        lambda: seq_conv1d_case(outdir, "conv1d_stride2", 2, 10, 3, 4, 3, stride=2,
                                activation="relu"),
        lambda: seq_conv1d_case(outdir, "conv1d_dilation2", 2, 10, 3, 4, 3, dilation=2),
        lambda: seq_max_pool1d_case(outdir, "max_pool1d", 2, 7, 3, 2, 2),
        lambda: seq_max_pool1d_case(outdir, "max_pool1d_same", 2, 8, 3, 3, 2, padding="same"),
        lambda: seq_masked_pool_case(outdir, "masked_pool"),
        lambda: seq_embedding_case(outdir, "embedding_lstm", "lstm", False),
        lambda: seq_embedding_case(outdir, "embedding_bigru", "gru", True),
    ]
    for c in cases:
        c()
    return len(cases)


# ---------------------------------------------------------------------------
# Transformer layers and a GPT (float64), read by tests/test_transformer.cpp, which loads the same
# weights into nn::MultiHeadAttention / RMSNorm / TransformerBlock / TransformerEncoder / GPT
# ---------------------------------------------------------------------------

def tf_write(outdir, case, tensors, meta):
    meta = dict(meta, case=case)
    write_safetensors(os.path.join(outdir, f"tf_{case}.safetensors"), tensors, meta)


def tf_randomize(module):
    """Random values for every parameter (torch's init leaves biases at 0 and norm gains at 1,
    which would hide a mixed-up bias or gain): norm gains 1 + 0.1 N, other vectors 0.1 N,
    matrices N / sqrt(fan_in)."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn_like(p) / p.shape[1] ** 0.5)
            elif ("norm" in name or "ln_" in name) and name.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn_like(p))
            else:
                p.copy_(0.1 * torch.randn_like(p))


def tf_causal_mask(steps):
    """torch's attn_mask: True where query i may not attend key j (j > i)."""
    return torch.triu(torch.ones(steps, steps, dtype=torch.bool), 1)


def tf_module_case(outdir, case, module, inputs, run, attrs):
    """Writes the module's parameters under their state-dict names, the inputs (float64 x, xk;
    the U8 mask), out = run(module, leaves), r and grad.<name> for the float inputs and every
    parameter. Metadata: attrs (JSON, the layer's options on the C++ side), params (JSON names)."""
    tf_randomize(module)
    leaves = {k: v.clone().requires_grad_(True) for k, v in inputs.items() if v.dtype == F64}
    params = dict(module.named_parameters())
    out = run(module, leaves)
    tensors = {k: as_stored(v) for k, v in inputs.items()}
    tensors["out"] = out.detach()
    for name, p in params.items():
        tensors[name] = p.detach().clone()
    seq_loss_grads(out, dict(leaves, **params), tensors)
    meta = {"attrs": json.dumps(attrs), "params": json.dumps(list(params)), "module": repr(module)}
    tf_write(outdir, case, tensors, meta)


def tf_mha_case(outdir, case, causal=False, padded=False, cross=False, bias=True):
    torch.manual_seed(case_seed("tf_" + case))
    batch, steps, embed, heads = 2, 5, 8, 2
    mha = nn.MultiheadAttention(embed, heads, bias=bias, batch_first=True).double()
    inputs = {"x": torch.randn(batch, steps, embed, dtype=F64)}
    if cross:
        inputs["xk"] = torch.randn(batch, steps + 2, embed, dtype=F64)
    if padded:  # Keras's mask: true at real steps; the second sample has 3
        inputs["mask"] = torch.tensor([[1] * steps, [1, 1, 1, 0, 0]], dtype=torch.bool)

    def run(m, v):
        kv = v["xk"] if cross else v["x"]
        pad = ~inputs["mask"] if padded else None
        return m(v["x"], kv, kv, need_weights=False, key_padding_mask=pad,
                 attn_mask=tf_causal_mask(steps) if causal else None)[0]

    attrs = {"num_heads": heads, "causal": causal, "cross_attention": cross, "use_bias": bias}
    tf_module_case(outdir, case, mha, inputs, run, attrs)


class TfRMSNorm(nn.Module):
    """torch 1.13 has no nn.RMSNorm: x / sqrt(mean(x^2) + eps) * weight over the last dim."""

    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return rms_norm([x, self.weight], self.eps)


class TfSwiGLUBlock(nn.Module):
    """A pre-norm block as nn.TransformerEncoderLayer(norm_first=True) but with RMSNorm and a
    SwiGLU MLP: linear2(silu(linear_gate(h)) * linear1(h))."""

    def __init__(self, d, heads, hidden, eps):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.linear1 = nn.Linear(d, hidden)
        self.linear_gate = nn.Linear(d, hidden)
        self.linear2 = nn.Linear(hidden, d)
        self.norm1 = TfRMSNorm(d, eps)
        self.norm2 = TfRMSNorm(d, eps)

    def forward(self, x, src_mask=None):
        h = self.norm1(x)
        x = x + self.self_attn(h, h, h, attn_mask=src_mask, need_weights=False)[0]
        h = self.norm2(x)
        return x + self.linear2(F.silu(self.linear_gate(h)) * self.linear1(h))


def tf_block_case(outdir, case, causal=False, swiglu=False, layers=0, padded=False):
    """nn.TransformerEncoderLayer(8, 2, 16, dropout 0, gelu, batch_first, norm_first), or
    TfSwiGLUBlock; with layers > 0 an nn.TransformerEncoder of that many and a final LayerNorm."""
    torch.manual_seed(case_seed("tf_" + case))
    batch, steps, d, heads, hidden = 2, 5, 8, 2, 16
    if swiglu:
        module = TfSwiGLUBlock(d, heads, hidden, 1e-5)
    else:
        module = nn.TransformerEncoderLayer(d, heads, hidden, dropout=0.0, activation="gelu",
                                            batch_first=True, norm_first=True)
    if layers:
        module = nn.TransformerEncoder(module, layers, norm=nn.LayerNorm(d))
    module = module.double()
    inputs = {"x": torch.randn(batch, steps, d, dtype=F64)}
    if padded:
        inputs["mask"] = torch.tensor([[1] * steps, [1, 1, 0, 0, 0]], dtype=torch.bool)

    def run(m, v):
        kwargs = {"src_key_padding_mask": ~inputs["mask"]} if padded else {}
        return m(v["x"], tf_causal_mask(steps) if causal else None, **kwargs)

    attrs = {"num_heads": heads, "dim_feedforward": hidden, "causal": causal,
             "mlp": "swiglu" if swiglu else "gelu", "norm": "rmsnorm" if swiglu else "layernorm",
             "num_layers": layers}
    tf_module_case(outdir, case, module, inputs, run, attrs)


def tf_rms_norm_case(outdir, case):
    torch.manual_seed(case_seed("tf_" + case))
    module = TfRMSNorm(8, 1e-6).double()
    inputs = {"x": torch.randn(3, 4, 8, dtype=F64)}
    tf_module_case(outdir, case, module, inputs, lambda m, v: m(v["x"]), {"epsilon": 1e-6})


class TfGPTBlock(nn.Module):
    """nanoGPT's Block: x + attn(ln_1(x)), then + mlp(ln_2(x)), causal attention, exact GELU."""

    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.ln_1 = nn.LayerNorm(d)
        self.attn = nn.Module()
        self.attn.c_attn = nn.Linear(d, 3 * d)
        self.attn.c_proj = nn.Linear(d, d)
        self.ln_2 = nn.LayerNorm(d)
        self.mlp = nn.Module()
        self.mlp.c_fc = nn.Linear(d, 4 * d)
        self.mlp.c_proj = nn.Linear(4 * d, d)

    def attention(self, x):
        b, t, d = x.shape
        q, k, v = self.attn.c_attn(x).split(d, dim=2)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        scores = (q @ k.transpose(-2, -1)) * (d // self.heads) ** -0.5
        scores = scores.masked_fill(tf_causal_mask(t), float("-inf"))
        y = (scores.softmax(-1) @ v).transpose(1, 2).contiguous().view(b, t, d)
        return self.attn.c_proj(y)

    def forward(self, x):
        x = x + self.attention(self.ln_1(x))
        return x + self.mlp.c_proj(F.gelu(self.mlp.c_fc(self.ln_2(x))))


class TfGPT(nn.Module):
    """nanoGPT with learned positions and the head tied to wte (names as nn/gpt.h's comment)."""

    def __init__(self, vocab, context, layers, heads, d):
        super().__init__()
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(vocab, d), wpe=nn.Embedding(context, d),
            h=nn.ModuleList([TfGPTBlock(d, heads) for _ in range(layers)]), ln_f=nn.LayerNorm(d)))

    def forward(self, idx):
        tr = self.transformer
        x = tr.wte(idx) + tr.wpe(torch.arange(idx.shape[1]))
        for block in tr.h:
            x = block(x)
        return F.linear(tr.ln_f(x), tr.wte.weight)


TF_GPT = {"vocab_size": 13, "context": 8, "layers": 2, "heads": 2, "d_model": 8}


def tf_gpt_loss(model, x, y):
    logits = model(x)
    return logits, F.cross_entropy(logits.view(-1, logits.shape[-1]), y.view(-1))


def tf_gpt_case(outdir, case):
    """Logits and every parameter's gradient of the mean cross-entropy, for tokens x (3, 8)."""
    torch.manual_seed(case_seed("tf_" + case))
    o = TF_GPT
    model = TfGPT(o["vocab_size"], o["context"], o["layers"], o["heads"], o["d_model"]).double()
    tf_randomize(model)
    x = torch.randint(0, o["vocab_size"], (3, o["context"]))
    y = torch.randint(0, o["vocab_size"], (3, o["context"]))
    logits, loss = tf_gpt_loss(model, x, y)
    params = dict(model.named_parameters())
    grads = torch.autograd.grad(loss, list(params.values()))
    tensors = {"x": x, "y": y, "logits": logits.detach(), "loss": loss.detach().reshape(1)}
    for (name, p), g in zip(params.items(), grads):
        tensors[name] = p.detach().clone()
        tensors[f"grad.{name}"] = g
    tf_write(outdir, case, tensors, {"attrs": json.dumps(o), "params": json.dumps(list(params))})


def tf_gpt_adamw_case(outdir, case, steps=10):
    """10 steps of torch.optim.AdamW (lr 1e-3, betas (0.9, 0.95), eps 1e-8, weight decay 0.1 on
    the 2-D weights only, as nanoGPT's configure_optimizers) on batches x<i>, y<i>: losses (the
    loss before each update) and the final parameters as final.<name>."""
    torch.manual_seed(case_seed("tf_" + case))
    o = TF_GPT
    model = TfGPT(o["vocab_size"], o["context"], o["layers"], o["heads"], o["d_model"]).double()
    tf_randomize(model)
    tensors = {k: v.detach().clone() for k, v in model.named_parameters()}
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
    losses = []
    for step in range(steps):
        x = torch.randint(0, o["vocab_size"], (4, o["context"]))
        y = torch.randint(0, o["vocab_size"], (4, o["context"]))
        tensors[f"x{step}"], tensors[f"y{step}"] = x, y
        opt.zero_grad()
        _, loss = tf_gpt_loss(model, x, y)
        losses.append(loss.item())
        loss.backward()
        opt.step()
    tensors["losses"] = torch.tensor(losses, dtype=F64)
    for k, v in model.named_parameters():
        tensors[f"final.{k}"] = v.detach().clone()
    attrs = {"lr": 1e-3, "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 0.1, "steps": steps}
    tf_write(outdir, case, tensors, {"attrs": json.dumps(attrs), "gpt": json.dumps(o)})


def run_transformer_cases(outdir):
    """Returns the number of files written."""
    cases = [
        lambda: tf_mha_case(outdir, "mha"),
        lambda: tf_mha_case(outdir, "mha_causal", causal=True),
        lambda: tf_mha_case(outdir, "mha_padded", padded=True),
        lambda: tf_mha_case(outdir, "mha_cross", cross=True),
        lambda: tf_mha_case(outdir, "mha_no_bias_causal", causal=True, bias=False),
        lambda: tf_rms_norm_case(outdir, "rms_norm"),
        lambda: tf_block_case(outdir, "block"),
        lambda: tf_block_case(outdir, "block_causal", causal=True),
        lambda: tf_block_case(outdir, "block_swiglu_rms", causal=True, swiglu=True),
        lambda: tf_block_case(outdir, "encoder_padded", layers=2, padded=True),
        lambda: tf_gpt_case(outdir, "gpt"),
        lambda: tf_gpt_adamw_case(outdir, "gpt_adamw"),
    ]
    for c in cases:
        c()
    return len(cases)


# ---------------------------------------------------------------------------

def main(argv):
    if len(argv) != 2:
        print(f"usage: {argv[0]} OUTPUT_DIR", file=sys.stderr)
        return 2
    outdir = argv[1]
    os.makedirs(outdir, exist_ok=True)
    for old in glob.glob(os.path.join(outdir, "*.safetensors")):
        os.remove(old)
    torch.set_num_threads(1)

    golden = [(c, e) for c, e in load_cases() if "golden" in checks_of(c, e)]
    for c, entry in golden:
        run_op_case(outdir, c, entry)
    for m in MODELS:
        for o in OPTIMIZERS:
            run_train_case(outdir, m, o)
    seq = run_seq_cases(outdir)
    tf = run_transformer_cases(outdir)
    print(f"wrote {len(golden)} op cases, {len(MODELS) * len(OPTIMIZERS)} "
          f"training traces, {seq} sequence-layer cases and {tf} Transformer cases to {outdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
