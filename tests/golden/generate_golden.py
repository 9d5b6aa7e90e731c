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
# input helpers (all float64)
# ---------------------------------------------------------------------------

def randn(*shape):
    return torch.randn(*shape, dtype=F64)


def uniform(lo, hi, *shape):
    return torch.rand(*shape, dtype=F64) * (hi - lo) + lo


def away_from_zero(*shape, margin=0.2):
    x = randn(*shape)
    s = torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))
    return x + margin * s


def nonzero_uniform(*shape):
    """|x| in [0.5, 2], random sign."""
    mag = uniform(0.5, 2.0, *shape)
    sign = torch.where(torch.rand(*shape) < 0.5, -1.0, 1.0).to(F64)
    return mag * sign


def distinct(*shape):
    """Random permutation of distinct, well separated values (no ties)."""
    n = 1
    for s in shape:
        n *= s
    perm = torch.randperm(n).to(F64)
    return ((perm - n / 2.0) * (4.0 / n)).reshape(*shape)


def away_from_bounds(lo, hi, *shape, margin=0.1):
    x = uniform(-1.5, 1.5, *shape)
    for b in (lo, hi):
        near = (x - b).abs() < margin
        x = torch.where(near, x + torch.where(x >= b, 2 * margin, -2 * margin), x)
    return x


def labels(n, classes):
    return torch.randint(0, classes, (n,), dtype=torch.int64)


def mask_u8(*shape):
    return (torch.rand(*shape) < 0.5).to(torch.uint8)


# ---------------------------------------------------------------------------
# op cases
# ---------------------------------------------------------------------------
# Each case: (case_name, op_name, attrs, builder)
# builder() -> dict with keys:
#   inputs: list of tensors
#   fn: callable(*inputs) -> out  or (out, extra_tensors_dict)
#   grad_idx (optional): indices of inputs to differentiate (default: all F64)

CASES = []


def case(name, op, attrs=None):
    def deco(builder):
        CASES.append((name, op, attrs if attrs is not None else {}, builder))
        return builder
    return deco


# --- binary elementwise with broadcasting ---------------------------------
_BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
}
_BIN_SHAPES = [
    ("broadcast_row", (3, 4), (4,)),
    ("broadcast_3d", (2, 1, 3), (1, 4, 1)),
    ("same", (2, 3), (2, 3)),
]
for _op, _fn in _BINARY.items():
    for _suffix, _sa, _sb in _BIN_SHAPES:
        def _mk(op=_op, fn=_fn, sa=_sa, sb=_sb):
            def builder():
                a = randn(*sa)
                b = nonzero_uniform(*sb) if op == "div" else randn(*sb)
                return {"inputs": [a, b], "fn": fn}
            return builder
        case(f"{_op}_{_suffix}", _op)(_mk())

# --- unary elementwise ------------------------------------------------------
_UNARY = {
    "neg": (torch.neg, lambda: randn(2, 3, 4)),
    "exp": (torch.exp, lambda: randn(2, 3, 4)),
    "log": (torch.log, lambda: uniform(0.5, 3.0, 2, 3, 4)),
    "sqrt": (torch.sqrt, lambda: uniform(0.5, 3.0, 2, 3, 4)),
    "abs": (torch.abs, lambda: away_from_zero(2, 3, 4)),
    "relu": (torch.relu, lambda: away_from_zero(2, 3, 4)),
    "sigmoid": (torch.sigmoid, lambda: randn(2, 3, 4)),
    "tanh": (torch.tanh, lambda: randn(2, 3, 4)),
}
for _op, (_fn, _gen) in _UNARY.items():
    def _mk(fn=_fn, gen=_gen):
        return lambda: {"inputs": [gen()], "fn": fn}
    case(_op, _op)(_mk())


@case("pow_2_5_positive", "pow", {"exponent": 2.5})
def _():
    return {"inputs": [uniform(0.5, 2.0, 3, 4)], "fn": lambda x: torch.pow(x, 2.5)}


@case("pow_3_any_sign", "pow", {"exponent": 3.0})
def _():
    return {"inputs": [randn(3, 4)], "fn": lambda x: torch.pow(x, 3.0)}


@case("clamp", "clamp", {"min": -0.5, "max": 0.5})
def _():
    return {"inputs": [away_from_bounds(-0.5, 0.5, 3, 4)],
            "fn": lambda x: torch.clamp(x, -0.5, 0.5)}


@case("leaky_relu", "leaky_relu", {"negative_slope": 0.1})
def _():
    return {"inputs": [away_from_zero(2, 3, 4)],
            "fn": lambda x: F.leaky_relu(x, 0.1)}


@case("gelu_exact", "gelu", {"approximate": "none"})
def _():
    return {"inputs": [randn(2, 3, 4)], "fn": lambda x: F.gelu(x, approximate="none")}


@case("gelu_tanh", "gelu", {"approximate": "tanh"})
def _():
    return {"inputs": [randn(2, 3, 4)], "fn": lambda x: F.gelu(x, approximate="tanh")}


# --- softmax / log_softmax --------------------------------------------------
for _op, _fn in (("softmax", F.softmax), ("log_softmax", F.log_softmax)):
    def _mk2d(fn=_fn):
        return lambda: {"inputs": [randn(3, 5)], "fn": lambda x: fn(x, dim=1)}

    def _mk3d(fn=_fn):
        return lambda: {"inputs": [randn(2, 3, 4)], "fn": lambda x: fn(x, dim=0)}

    def _mkoff(fn=_fn):
        return lambda: {"inputs": [randn(3, 5) + 1000.0], "fn": lambda x: fn(x, dim=1)}

    case(f"{_op}_dim1", _op, {"dim": 1})(_mk2d())
    case(f"{_op}_3d_dim0", _op, {"dim": 0})(_mk3d())
    case(f"{_op}_large_offset", _op, {"dim": 1})(_mkoff())


# --- matmul -----------------------------------------------------------------
@case("matmul_2d", "matmul")
def _():
    return {"inputs": [randn(3, 4), randn(4, 5)], "fn": torch.matmul}


@case("matmul_batched", "matmul")
def _():
    return {"inputs": [randn(2, 3, 4), randn(2, 4, 5)], "fn": torch.matmul}


@case("matmul_broadcast", "matmul")
def _():
    return {"inputs": [randn(2, 3, 4), randn(4, 5)], "fn": torch.matmul}


# --- reductions -------------------------------------------------------------
for _op, _fn in (("sum", torch.sum), ("mean", torch.mean)):
    def _mk(fn=_fn, dims=None, keepdim=False):
        def builder():
            if dims:
                return {"inputs": [randn(2, 3, 4)],
                        "fn": lambda x: fn(x, dim=dims, keepdim=keepdim)}
            return {"inputs": [randn(2, 3, 4)], "fn": lambda x: fn(x)}
        return builder

    case(f"{_op}_dim1_keepdim", _op, {"dims": [1], "keepdim": True})(_mk(dims=[1], keepdim=True))
    case(f"{_op}_dims02", _op, {"dims": [0, 2], "keepdim": False})(_mk(dims=[0, 2]))
    case(f"{_op}_all", _op, {"dims": [], "keepdim": False})(_mk())


@case("max_dim1_keepdim", "max", {"dims": [1], "keepdim": True})
def _():
    return {"inputs": [distinct(2, 3, 4)], "fn": lambda x: torch.amax(x, dim=1, keepdim=True)}


@case("max_dim2", "max", {"dims": [2], "keepdim": False})
def _():
    return {"inputs": [distinct(2, 3, 4)], "fn": lambda x: torch.amax(x, dim=2, keepdim=False)}


@case("max_all", "max", {"dims": [], "keepdim": False})
def _():
    return {"inputs": [distinct(2, 3, 4)], "fn": lambda x: torch.max(x)}


# --- shape ops --------------------------------------------------------------
@case("reshape", "reshape", {"shape": [4, 6]})
def _():
    return {"inputs": [randn(2, 3, 4)], "fn": lambda x: x.reshape(4, 6)}


@case("permute", "permute", {"dims": [2, 0, 1]})
def _():
    return {"inputs": [randn(2, 3, 4)], "fn": lambda x: x.permute(2, 0, 1)}


@case("slice_dim1", "slice", {"dim": 1, "start": 1, "end": 4, "step": 1})
def _():
    return {"inputs": [randn(4, 5, 6)], "fn": lambda x: x[:, 1:4]}


@case("slice_step2", "slice", {"dim": 1, "start": 1, "end": 4, "step": 2})
def _():
    return {"inputs": [randn(4, 5, 6)], "fn": lambda x: x[:, 1:4:2]}


@case("concat_dim1", "concat", {"dim": 1})
def _():
    return {"inputs": [randn(2, 3), randn(2, 5)],
            "fn": lambda a, b: torch.cat([a, b], dim=1)}


@case("concat_three_dim0", "concat", {"dim": 0})
def _():
    return {"inputs": [randn(2, 3), randn(1, 3), randn(3, 3)],
            "fn": lambda a, b, c: torch.cat([a, b, c], dim=0)}


# --- indexing ---------------------------------------------------------------
@case("embedding", "embedding")
def _():
    w = randn(10, 4)
    idx = torch.randint(0, 10, (2, 3), dtype=torch.int64)
    idx[1, 2] = idx[0, 0]  # repeated index -> scatter-add in backward
    idx[1, 0] = idx[0, 1]
    return {"inputs": [w, idx], "fn": lambda w, i: F.embedding(i, w)}


@case("index_select_dim0", "index_select", {"dim": 0})
def _():
    x = randn(5, 3)
    idx = torch.randint(0, 5, (4,), dtype=torch.int64)
    idx[3] = idx[0]
    return {"inputs": [x, idx], "fn": lambda x, i: torch.index_select(x, 0, i)}


@case("index_select_dim1", "index_select", {"dim": 1})
def _():
    x = randn(5, 3)
    idx = torch.randint(0, 3, (4,), dtype=torch.int64)
    idx[2] = idx[1]
    return {"inputs": [x, idx], "fn": lambda x, i: torch.index_select(x, 1, i)}


@case("where", "where")
def _():
    return {"inputs": [mask_u8(3, 4), randn(3, 4), randn(3, 4)],
            "fn": lambda c, a, b: torch.where(c.bool(), a, b)}


@case("where_broadcast_cond", "where")
def _():
    c = torch.tensor([[1], [0], [1]], dtype=torch.uint8)
    return {"inputs": [c, randn(3, 4), randn(3, 4)],
            "fn": lambda c, a, b: torch.where(c.bool(), a, b)}


@case("masked_fill", "masked_fill", {"value": -1e9})
def _():
    return {"inputs": [randn(3, 4), mask_u8(3, 4)],
            "fn": lambda x, m: x.masked_fill(m.bool(), -1e9)}


# --- conv2d -----------------------------------------------------------------
def _conv_case(name, n, cin, h, w, cout, k, stride, padding, dilation, groups):
    attrs = {"stride": list(stride), "padding": list(padding),
             "dilation": list(dilation), "groups": groups}

    def builder():
        x = randn(n, cin, h, w)
        wt = randn(cout, cin // groups, k[0], k[1]) * 0.5
        b = randn(cout)
        return {"inputs": [x, wt, b],
                "fn": lambda x, wt, b: F.conv2d(x, wt, b, stride=stride, padding=padding,
                                                dilation=dilation, groups=groups)}
    case(name, "conv2d", attrs)(builder)


_conv_case("conv2d_3x3", 2, 3, 7, 7, 4, (3, 3), (1, 1), (0, 0), (1, 1), 1)
_conv_case("conv2d_stride2_pad1", 2, 3, 7, 7, 4, (3, 3), (2, 2), (1, 1), (1, 1), 1)
_conv_case("conv2d_dilation2", 2, 3, 7, 7, 4, (3, 3), (1, 1), (0, 0), (2, 2), 1)
_conv_case("conv2d_groups", 2, 4, 6, 6, 6, (3, 3), (1, 1), (1, 1), (1, 1), 2)
_conv_case("conv2d_1x1", 2, 3, 5, 5, 4, (1, 1), (1, 1), (0, 0), (1, 1), 1)
_conv_case("conv2d_nonsquare", 2, 3, 7, 6, 4, (3, 2), (2, 1), (0, 0), (1, 1), 1)


# --- pooling ----------------------------------------------------------------
def _pool_cases():
    for suffix, k, s, p in (("k2s2", 2, 2, 0), ("k3s2p1", 3, 2, 1)):
        mattrs = {"kernel_size": [k, k], "stride": [s, s], "padding": [p, p]}

        def mbuilder(k=k, s=s, p=p):
            return {"inputs": [distinct(2, 3, 8, 8)],
                    "fn": lambda x: F.max_pool2d(x, k, s, p)}
        case(f"max_pool2d_{suffix}", "max_pool2d", mattrs)(mbuilder)

        aattrs = dict(mattrs, count_include_pad=True)

        def abuilder(k=k, s=s, p=p):
            return {"inputs": [randn(2, 3, 8, 8)],
                    "fn": lambda x: F.avg_pool2d(x, k, s, p, ceil_mode=False,
                                                 count_include_pad=True)}
        case(f"avg_pool2d_{suffix}", "avg_pool2d", aattrs)(abuilder)


_pool_cases()


# --- normalization ----------------------------------------------------------
def _bn_case(name, shape, training):
    attrs = {"training": training, "momentum": 0.1, "eps": 1e-5}
    c = shape[1]

    def builder():
        x = randn(*shape) * 1.5 + 0.3
        w = uniform(0.5, 1.5, c)
        b = randn(c)
        rm = randn(c) * 0.5
        rv = uniform(0.5, 2.0, c)

        def fn(x, w, b, rm, rv):
            rm2, rv2 = rm.detach().clone(), rv.detach().clone()
            out = F.batch_norm(x, rm2, rv2, w, b, training=training,
                               momentum=0.1, eps=1e-5)
            extra = {}
            if training:
                extra = {"running_mean_after": rm2, "running_var_after": rv2}
            return out, extra
        return {"inputs": [x, w, b, rm, rv], "fn": fn, "grad_idx": [0, 1, 2]}
    case(name, "batch_norm", attrs)(builder)


_bn_case("batch_norm_train_4d", (4, 3, 5, 5), True)
_bn_case("batch_norm_train_2d", (8, 6), True)
_bn_case("batch_norm_eval_4d", (4, 3, 5, 5), False)


@case("layer_norm_last", "layer_norm", {"normalized_shape": [4], "eps": 1e-5})
def _():
    return {"inputs": [randn(2, 3, 4), uniform(0.5, 1.5, 4), randn(4)],
            "fn": lambda x, w, b: F.layer_norm(x, [4], w, b, 1e-5)}


@case("layer_norm_last2", "layer_norm", {"normalized_shape": [3, 4], "eps": 1e-5})
def _():
    return {"inputs": [randn(2, 3, 4), uniform(0.5, 1.5, 3, 4), randn(3, 4)],
            "fn": lambda x, w, b: F.layer_norm(x, [3, 4], w, b, 1e-5)}


# --- losses (mean reduction, scalar out; gradient w.r.t. in0 only) ------------
@case("mse", "mse")
def _():
    return {"inputs": [randn(4, 3), randn(4, 3)], "fn": F.mse_loss, "grad_idx": [0]}


@case("bce", "bce")
def _():
    p = uniform(0.05, 0.95, 4, 1)
    t = mask_u8(4, 1).to(F64)
    return {"inputs": [p, t], "fn": F.binary_cross_entropy, "grad_idx": [0]}


@case("bce_with_logits", "bce_with_logits")
def _():
    return {"inputs": [randn(4, 3) * 2.0, mask_u8(4, 3).to(F64)],
            "fn": F.binary_cross_entropy_with_logits, "grad_idx": [0]}


@case("cross_entropy", "cross_entropy")
def _():
    return {"inputs": [randn(5, 4), labels(5, 4)], "fn": F.cross_entropy}


@case("soft_cross_entropy", "soft_cross_entropy")
def _():
    logits = randn(5, 4)
    target = torch.softmax(randn(5, 4) * 2.0, dim=1)
    return {"inputs": [logits, target],
            "fn": lambda z, t: -(t * F.log_softmax(z, dim=1)).sum(1).mean(),
            "grad_idx": [0]}


@case("nll", "nll")
def _():
    logp = F.log_softmax(randn(5, 4), dim=1)
    return {"inputs": [logp, labels(5, 4)], "fn": F.nll_loss}


def case_seed(name):
    return zlib.crc32(name.encode("utf-8")) & 0x7FFFFFFF


def run_op_case(outdir, name, op, attrs, builder):
    torch.manual_seed(case_seed(name))
    spec = builder()
    inputs = spec["inputs"]
    for t in inputs:
        assert t.dtype in (F64, torch.int64, torch.uint8), (name, t.dtype)
    grad_idx = spec.get("grad_idx")
    if grad_idx is None:
        grad_idx = [i for i, t in enumerate(inputs) if t.dtype == F64]
    leaves = []
    for i, t in enumerate(inputs):
        t = t.detach().clone()
        if i in grad_idx:
            t.requires_grad_(True)
        leaves.append(t)
    res = spec["fn"](*leaves)
    out, extra = (res if isinstance(res, tuple) else (res, {}))
    assert out.dtype == F64, (name, out.dtype)
    grad_out = torch.randn(out.shape, dtype=F64)
    grads = torch.autograd.grad(out, [leaves[i] for i in grad_idx], grad_out)

    tensors = {}
    for i, t in enumerate(inputs):
        tensors[f"in{i}"] = t
    tensors["out"] = out.detach()
    tensors["grad_out"] = grad_out
    for i, g in zip(grad_idx, grads):
        tensors[f"grad_in{i}"] = g
    tensors.update({k: v.detach() for k, v in extra.items()})
    meta = {"op": op, "attrs": json.dumps(attrs)}
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

def main(argv):
    if len(argv) != 2:
        print(f"usage: {argv[0]} OUTPUT_DIR", file=sys.stderr)
        return 2
    outdir = argv[1]
    os.makedirs(outdir, exist_ok=True)
    for old in glob.glob(os.path.join(outdir, "*.safetensors")):
        os.remove(old)
    torch.set_num_threads(1)

    names = [c[0] for c in CASES]
    dup = {n for n in names if names.count(n) > 1}
    assert not dup, f"duplicate case names: {dup}"

    for name, op, attrs, builder in CASES:
        run_op_case(outdir, name, op, attrs, builder)
    for m in MODELS:
        for o in OPTIMIZERS:
            run_train_case(outdir, m, o)
    print(f"wrote {len(CASES)} op cases and {len(MODELS) * len(OPTIMIZERS)} "
          f"training traces to {outdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
