"""The hostile files of tests/test_hostile*.cpp, rebuilt as files for cost_check.py, with the
command that reads each one and the baseline (a valid input of the same kind) it is compared to.
Each case keeps the message its test expects, so a case that is refused for another reason (the
file was built wrong) shows up instead of passing."""
import io
import json
import struct
import zipfile
import zlib
from collections import namedtuple
from pathlib import Path

Case = namedtuple("Case", "name argv baseline expect message")
REFUSE, ACCEPT, ANY = "refuse", "accept", "any"

# ---- safetensors, as neutrino writes it (model files and checkpoints) ---------------------------

DTYPE_NAMES = {"F32": "float32", "F64": "float64", "I64": "int64", "BOOL": "bool", "BF16": "bfloat16"}


def read_st(path):
    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    data = raw[8 + n:]
    tensors = {name: (e["dtype"], e["shape"], data[e["data_offsets"][0]:e["data_offsets"][1]])
               for name, e in header.items()}
    return meta, tensors


def write_st(path, meta, tensors):
    header, blob = {"__metadata__": meta}, b""
    for name in sorted(tensors):
        dtype, shape, data = tensors[name]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + len(data)]}
        blob += data
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    Path(path).write_bytes(struct.pack("<Q", len(text)) + text + blob)


def shape_str(shape):
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def checksum(tensors):
    """io::tensors_checksum: CRC-32 over "name|dtype|shape|" and the bytes, in name order."""
    crc = 0
    for name in sorted(tensors):
        dtype, shape, data = tensors[name]
        crc = zlib.crc32(f"{name}|{DTYPE_NAMES[dtype]}|{shape_str(shape)}|".encode(), crc)
        crc = zlib.crc32(data, crc)
    return f"crc32:{crc:08x}"


def f32(values):
    return struct.pack(f"<{len(values)}f", *values)


def f32_values(data):
    return list(struct.unpack(f"<{len(data) // 4}f", data))


# ---- images, NPY, IDX -----------------------------------------------------------------------------

def png_chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_raw(width, height, depth, color, raw, idat=None):
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0)
    body = zlib.compress(raw, 9) if idat is None else idat
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", body) +
            png_chunk(b"IEND", b""))


def png(width, height, channels, depth=8, value=100):
    color = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    row_bytes = width * channels * depth // 8
    sample = bytes([value >> 8, value & 0xFF]) if depth == 16 else bytes([value])
    row = (sample * row_bytes)[:row_bytes]
    return png_raw(width, height, depth, color, (b"\0" + row) * height)


def bmp(width, height, pixel_bytes):
    header = b"BM" + struct.pack("<IHHI", 54 + pixel_bytes, 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 0, 0, 0, 0)
    return header + info + b"\x40" * pixel_bytes


def npy(descr, shape, data, fortran=False):
    header = f"{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {tuple(shape)}, }}"
    header += " " * (-(10 + len(header) + 1) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + data


def idx_images(count, rows, cols, pixels):
    return struct.pack(">IIII", 0x00000803, count, rows, cols) + pixels


def idx_labels(labels):
    return struct.pack(">II", 0x00000801, len(labels)) + bytes(labels)


# ---- the setup: small valid models, checkpoints and inputs, made by the CLI itself ----------------

XOR_LAYERS = "    - Dense: {units: 3, activation: sigmoid}\n    - Dense: {units: 1, activation: sigmoid}\n"
XOR_COMPILE = "compile:\n  optimizer: {adam: {learning_rate: 0.1}}\n  loss: binary_crossentropy\n  metrics: [accuracy]\n"


class Setup:
    def __init__(self, runner, work, source):
        self.runner, self.work, self.source = runner, Path(work), Path(source)
        for sub in ("out", "cfg", "model", "input", "fifo"):
            (self.work / sub).mkdir(exist_ok=True)
        self.xor_csv = self.source / "configs" / "data" / "xor.csv"
        self.write("input/in.csv", "x1,x2\n0,1\n1,1\n")
        # The image model's data: 8 grey 28x28 images in IDX, 3 classes.
        self.write("input/images.idx", idx_images(8, 28, 28, bytes((i * 7) % 256 for i in range(8 * 784))))
        self.write("input/labels.idx", idx_labels([i % 3 for i in range(8)]))
        self.write("input/ok.png", png(28, 28, 1))
        self.write("input/ok.npy", npy("<f4", (2, 1, 28, 28), f32([0.5] * 2 * 784)))
        self.write("input/ok.npz", npz({"x.npy": npy("<f4", (4, 2), f32([0, 0, 0, 1, 1, 0, 1, 1])),
                                        "y.npy": npy("<f4", (4,), f32([0, 1, 1, 0]))}))
        self.xor_yaml = self.config("xor", self.xor_cfg())
        self.es_yaml = self.config("es", self.xor_cfg(
            "  epochs: 2\n  callbacks: [EarlyStopping: {monitor: loss, patience: 5}]\n"))
        self.stop_yaml = self.config("stop", self.xor_cfg(
            "  epochs: 50\n  callbacks:\n    - EarlyStopping: {monitor: loss, mode: max, patience: 1, "
            "restore_best_weights: true}\n"))
        self.img_yaml = self.config("img", self.img_cfg("    - Flatten: {}\n    - Dense: {units: 3, activation: softmax}\n"))
        self.model = self.train(self.xor_yaml, "m")
        self.ckpt = str(self.work / "model" / "m.ckpt.safetensors")
        self.train(self.es_yaml, "es")
        self.es_ckpt = str(self.work / "model" / "es.ckpt.safetensors")
        self.train(self.stop_yaml, "stop")
        self.img_model = self.train(self.img_yaml, "img")
        # Text (issue 12): a normal text file for `tokenize`, and a small text classifier whose
        # preprocessing (a char tokenize step) the tokenizer and pipeline corpus files replace.
        self.ok_txt = self.write("input/ok.txt", "".join(f"line {i}: the quick brown fox\n" for i in range(200)))
        self.write("input/vowels.txt", "".join("aeiou ia eo\n" for _ in range(20)))
        self.write("input/digits.txt", "".join(f"{i * 7919} {i}\n" for i in range(20)))
        self.text_yaml = self.config("text", self.text_cfg())
        self.text_model = self.train(self.text_yaml, "text")
        meta, tensors = read_st(self.model)
        if checksum(tensors) != meta["checksum"]:
            raise SystemExit("cost_check: hostile_files.checksum no longer matches io::tensors_checksum")

    def path(self, rel):
        return str(self.work / rel)

    def write(self, rel, content):
        p = self.work / rel
        p.write_bytes(content if isinstance(content, bytes) else content.encode())
        return str(p)

    def config(self, name, text):
        return self.write(f"cfg/{name}.yaml", text)

    def xor_cfg(self, fit="  epochs: 3\n", layers=XOR_LAYERS, input_shape="[2]", compile_=XOR_COMPILE,
                preprocess=""):
        return (f"seed: 42\ndata:\n  train: {{csv: {self.xor_csv}, label: y}}\n{preprocess}"
                f"model:\n  input_shape: {input_shape}\n  layers:\n{layers}{compile_}"
                f"fit:\n  batch_size: 4\n  verbose: 0\n{fit}")

    def img_cfg(self, layers, fit="  epochs: 1\n"):
        return (f"seed: 1\ndata:\n  train: {{idx: {{images: {self.path('input/images.idx')}, "
                f"labels: {self.path('input/labels.idx')}}}}}\n  preprocess: [{{rescale: 0.00392}}]\n"
                f"model:\n  input_shape: [28, 28, 1]\n  layers:\n{layers}"
                "compile: {optimizer: adam, loss: sparse_categorical_crossentropy, metrics: [accuracy]}\n"
                f"fit:\n  batch_size: 4\n  verbose: 0\n{fit}")

    def text_cfg(self):
        files = f"[{self.path('input/vowels.txt')}, {self.path('input/digits.txt')}]"
        return (f"seed: 1\ndata:\n  train: {{text_files: {files}}}\n"
                "  preprocess: [tokenize: {kind: char, max_length: 16}]\n"
                "model:\n  input_shape: [16]\n  layers:\n"
                "    - Embedding: {input_dim: 512, output_dim: 2, mask_zero: true}\n"
                "    - GlobalAveragePooling1D: {}\n    - Dense: {units: 2, activation: softmax}\n"
                "compile: {optimizer: adam, loss: sparse_categorical_crossentropy, metrics: [accuracy]}\n"
                "fit:\n  epochs: 1\n  batch_size: 8\n  verbose: 0\n")

    def train(self, config, name):
        out = self.path(f"model/{name}.safetensors")
        code, _, _, text = self.runner.once(["train", config, "-o", out])
        if code != 0:
            raise SystemExit(f"cost_check: setup: training {config} failed ({code}): {text}")
        return out

    def baselines(self):
        out = self.path("out")
        return {
            "train": ["train", self.xor_yaml, "-o", f"{out}/base.safetensors"],
            "resume": ["train", self.xor_yaml, "-o", f"{out}/r.safetensors", "--epochs", "4", "--resume", self.ckpt],
            "resume_es": ["train", self.es_yaml, "-o", f"{out}/res.safetensors", "--epochs", "3",
                          "--resume", self.es_ckpt],
            "summary_config": ["summary", self.xor_yaml],
            "eval": ["eval", self.model, "--data", self.xor_csv],
            "eval_npz": ["eval", self.model, "--data", self.path("input/ok.npz")],
            "predict": ["predict", self.model, "--input", self.path("input/in.csv")],
            "summary": ["summary", self.model],
            "image": ["predict", self.img_model, "--input", self.path("input/ok.png")],
            "npy": ["predict", self.img_model, "--input", self.path("input/ok.npy")],
            "idx": ["predict", self.img_model, "--input", self.path("input/images.idx")],
            "tokenize": ["tokenize", self.ok_txt, "--kind", "char", "-o", f"{out}/base.tok"],
            "predict_text": ["predict", self.text_model, "--text", "aeiou 123"],
        }


def npz(members, compress=True):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()

