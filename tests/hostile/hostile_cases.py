"""The cases of cost_check.py: one per hostile case of tests/test_hostile*.cpp (the name says which
test it comes from), each a file made here, the CLI command that reads it, its baseline (a key of
Setup.baselines()), the outcome expected, and a part of the message its test expects."""
import base64
import gzip
import json
import os
import struct
import zlib
from pathlib import Path

from hostile_files import (ACCEPT, ANY, REFUSE, Case, bmp, checksum, f32, f32_values, idx_images, npy,
                           npz, png, png_raw, read_st, write_st)


def model_file_cases(s):
    """tests/test_hostile_cli.cpp and test_hostile_model.cpp: model files whose metadata or tensors lie."""
    out = []
    meta, tensors = read_st(s.model)

    def variant(name, key=None, value=None, tensors_=None, fix=True):
        m = dict(meta)
        t = dict(tensors) if tensors_ is None else tensors_
        if key is not None:
            m[key] = value
        if tensors_ is not None and fix:
            m["checksum"] = checksum(t)
        path = s.path(f"model/{name}.safetensors")
        write_st(path, m, t)
        return path

    def case(name, verb, path, baseline, expect, message, extra=None):
        argv = {"eval": ["eval", path, "--data", s.xor_csv],
                "predict": ["predict", path, "--input", s.path("input/in.csv")],
                "summary": ["summary", path]}[verb]
        out.append(Case(name, argv, baseline or verb, expect, message))

    for name, compile_, message in [
            ("compile_truncated_json", '{"loss": ', "not valid JSON"),
            ("compile_metrics_string", '{"loss": "binary_crossentropy", "metrics": "accuracy"}',
             "compile.metrics: expected a list of strings"),
            ("compile_metrics_int", '{"loss": "binary_crossentropy", "metrics": [3]}', "compile.metrics[0]: expected a string"),
            ("compile_metric_typo", '{"loss": "binary_crossentropy", "metrics": ["acurracy"]}', "compile.metrics[0]"),
            ("compile_no_loss", '{"metrics": []}', "compile.loss: missing required field"),
            ("compile_array", "[1, 2]", "compile: expected a map of options"),
            ("compile_unknown_field", '{"loss": "binary_crossentropy", "metrics": [], "x": 1}', "compile: unknown field 'x'")]:
        case(name, "eval", variant(name, "compile", compile_), None, REFUSE, message)
    case("compile_no_metrics", "eval", variant("compile_no_metrics", "compile", '{"loss": "binary_crossentropy"}'),
         None, ACCEPT, None)

    arch = meta["architecture"]
    case("arch_nested_100k", "predict", variant("arch_nested", "architecture", "[" * 100000 + "]" * 100000),
         None, REFUSE, "nested deeper than 64 levels")
    case("arch_nested_in_layers_200k", "summary", variant(
        "arch_nested2", "architecture", '{"class_name": "Sequential", "layers": ' + "[" * 200000 + "]" * 200000 + "}"),
        None, REFUSE, "nested deeper than 64")
    for units, message in [("100000000", "in the file, but the architecture makes it"),
                           ("2305843009213693952", ".units"), ("1e12", ".units")]:
        case(f"arch_units_{units}", "summary",
             variant(f"units_{units}", "architecture", arch.replace('"units":3', f'"units":{units}', 1)),
             None, REFUSE, message)
    layers = json.loads(arch)
    for count, expect, message in [(10000 - 2, ACCEPT, None), (100000, REFUSE, "more than the limit of 10000")]:
        many = dict(layers, layers=layers["layers"] + [{"Dropout": {"rate": 0.1}}] * count)
        case(f"arch_{count + 2}_layers", "summary", variant(f"layers_{count}", "architecture", json.dumps(many)),
             None, expect, message)
    case("arch_not_sequential", "summary",
         variant("arch_class", "architecture", json.dumps(dict(layers, class_name="Pipeline"))),
         None, REFUSE, "expected Sequential or Functional")
    case("preprocessing_unknown_kind", "eval", variant("pre_kind", "preprocessing", '[{"kind": "rotate"}]'),
         None, REFUSE, "unknown preprocessing step 'rotate'")
    case("preprocessing_zero_std", "predict", variant(
        "pre_std", "preprocessing", '[{"kind": "standardize", "shape": [2], "mean": [1, 2], "std": [0, 2]}]'),
        None, ACCEPT, None)
    case("mixed_precision_unknown", "eval", variant("mp", "mixed_precision", "fp64"), None, REFUSE, "mixed_precision")

    nan = dict(tensors)
    dtype, shape, data = nan["dense_1.weight"]
    nan["dense_1.weight"] = (dtype, shape, f32([float("nan")]) + data[4:])
    case("weights_nan", "eval", variant("nan", tensors_=nan), None, REFUSE,
         "tensor 'dense_1.weight' holds NaN or infinite values")
    flipped = dict(tensors)
    flipped["dense.bias"] = (dtype, [3], f32([9.0, 9.0, 9.0]))
    case("weights_checksum_mismatch", "eval", variant("crc", tensors_=flipped, fix=False), None, REFUSE,
         "checksum mismatch")

    # The container itself (the fuzz_safetensors domain) and files that are not safetensors.
    raw = Path(s.model).read_bytes()
    for name, content, message in [
            ("st_empty", b"", None), ("st_header_length_huge", b"\xff" * 8 + b"{}", None),
            ("st_header_not_json", struct.pack("<Q", 8) + b"not json", None),
            ("st_truncated_data", raw[:-8], None),
            ("st_offsets_past_end", raw.replace(b'"data_offsets":[0,12]', b'"data_offsets":[0,9999999999]', 1), None),
            ("zip_as_model", npz({"x.npy": npy("<f4", (2,), f32([1, 2]))}), "not a safetensors file: it is a ZIP"),
            ("pickle_as_model", b"\x80\x02}q\x00." + b"\0" * 64, "a Python pickle"),
            ("npy_as_model", npy("<f4", (2,), f32([1, 2])), "a NumPy .npy file")]:
        path = s.write(f"model/{name}.safetensors", content)
        case(name, "summary", path, None, REFUSE, message)
    return out


def checkpoint_cases(s):
    """--resume with a damaged checkpoint (test_hostile_cli.cpp BadResume..., test_hostile_model.cpp)."""
    out = []
    meta, tensors = read_st(s.ckpt)
    state = meta["training_state"]

    def resume_case(name, ckpt_meta, ckpt_tensors, message, config=None, baseline="resume", fix=False):
        path = s.path(f"model/ck_{name}.safetensors")
        if fix:
            ckpt_meta = dict(ckpt_meta, checksum=checksum(ckpt_tensors))
        write_st(path, ckpt_meta, ckpt_tensors)
        argv = ["train", config or s.xor_yaml, "-o", s.path(f"out/ck_{name}.safetensors"), "--epochs", "4",
                "--resume", path]
        out.append(Case(f"resume_{name}", argv, baseline, REFUSE, message))

    seed_at = state.index('"shuffle_seed":"')
    seed_end = state.index('"', seed_at + 16)
    for name, seed in [("seed_abc", '"abc"'), ("seed_overflow", '"99999999999999999999999"'), ("seed_negative", '"-1"'),
                       ("seed_number", "12")]:
        bad = state[:seed_at] + '"shuffle_seed":' + seed + state[seed_end + 1:]
        resume_case(name, dict(meta, training_state=bad), tensors, "training_state.shuffle_seed")
    for name, text, message in [
            ("epochs_done_1e300", state.replace('"epochs_done":3', '"epochs_done":1e300'), "training_state.epochs_done"),
            ("epochs_done_missing", state.replace('"epochs_done":3', '"epochs_done_":3'), "training_state.epochs_done: missing"),
            ("rng_state_garbage", state.replace('"rng_state":"', '"rng_state":"x'), "training_state.rng_state"),
            ("state_array", "[1, 2]", "training_state"),
            ("state_bad_json", '{"epochs_done": ', "not valid JSON")]:
        resume_case(name, dict(meta, training_state=text), tensors, message)

    es_meta, es_tensors = read_st(s.es_ckpt)
    for i, bad in enumerate(["garbage", '{"best": 1}', '{"best": 1, "wait": -3, "best_epoch": 0}',
                             '{"best": "x", "wait": 0, "best_epoch": 0}']):
        es_state = json.loads(es_meta["training_state"])
        es_state["callbacks"]["0:EarlyStopping"] = bad  # the callback's state is a JSON string
        text = json.dumps(es_state, separators=(",", ":"))
        resume_case(f"callback_state_{i}", dict(es_meta, training_state=text), es_tensors,
                    "training_state.callbacks.0:EarlyStopping", config=s.es_yaml, baseline="resume_es")

    def with_tensor(name, value):
        t = dict(tensors)
        if value is None:
            t.pop(name)
        else:
            t[name] = value
        return t

    v = tensors["optimizer/v.0"]
    m = tensors["optimizer/m.0"]
    for name, t, message in [
            ("adam_v_negative", with_tensor("optimizer/v.0", (v[0], v[1], f32([-x - 1 for x in f32_values(v[2])]))),
             "'v.0' holds negative values"),
            ("adam_m_nan", with_tensor("optimizer/m.0", (m[0], m[1], f32([float("nan")]) + m[2][4:])), "NaN or infinite"),
            ("adam_m_shape", with_tensor("optimizer/m.0", ("F32", [3], f32([0, 0, 0]))), "'m.0' has shape (3,)"),
            ("adam_m_99", with_tensor("optimizer/m.99", ("F32", [3], f32([0, 0, 0]))), "'m.99' names no parameter"),
            ("adam_unknown_entry", with_tensor("optimizer/bogus.0", ("F32", [3], f32([0, 0, 0]))), "unknown entry 'bogus.0'"),
            ("adam_iterations_negative", with_tensor("optimizer/iterations", ("I64", [1], struct.pack("<q", -4))),
             "'iterations' must be >= 0"),
            ("adam_iterations_shape", with_tensor("optimizer/iterations", ("F32", [2], f32([0, 0]))),
             "'iterations' must be one int64")]:
        resume_case(name, meta, t, message, fix=True)
    # A run that EarlyStopping had ended: resuming trains no further (ResumingAnEarlyStoppedRun...).
    out.append(Case("resume_stopped_run", ["train", s.stop_yaml, "-o", s.path("out/stop.safetensors"), "--resume",
                                           s.path("model/stop.ckpt.safetensors")], "resume", ACCEPT, None))
    return out


def config_cases(s):
    """Configs: numbers out of range, huge layers, YAML bombs (test_hostile_model.cpp, test_hostile_cli.cpp)."""
    out = []

    def train(name, text, message, expect=REFUSE, verb="train", baseline="train"):
        path = s.config(f"bad_{name}", text)
        argv = ["train", path, "-o", s.path(f"out/cfg_{name}.safetensors")] if verb == "train" else ["summary", path]
        out.append(Case(f"config_{name}", argv, baseline, expect, message))

    x = s.xor_cfg
    for name, fit, message in [
            ("epochs_2^32+1", "  epochs: 4294967297\n", "fit.epochs: must be in [0, 2147483647]"),
            ("epochs_inf", "  epochs: inf\n", "fit.epochs: expected a finite number, got inf"),
            ("epochs_.inf", "  epochs: .inf\n", "got .inf"),
            ("epochs_1e300", "  epochs: 1e300\n", "fit.epochs: expected an integer"),
            ("patience_2^32", "  epochs: 2\n  callbacks: [EarlyStopping: {patience: 4294967296}]\n",
             "fit.callbacks[0].EarlyStopping.patience"),
            ("reduce_lr_factor_2", "  epochs: 2\n  callbacks: [ReduceLROnPlateau: {factor: 2}]\n", "ReduceLROnPlateau.factor: must be in [0.0, 1.0]")]:
        train(name, x(fit), message)
    train("batch_size_0", x().replace("  batch_size: 4", "  batch_size: 0"), "fit.batch_size")
    train("verbose_7", x().replace("  verbose: 0", "  verbose: 7"), "fit.verbose: must be in [0, 2], got 7")
    train("adam_lr_nan", x(compile_=XOR_COMPILE_WITH("{adam: {learning_rate: .nan}}")), "got .nan")
    train("adam_beta_2_5", x(compile_=XOR_COMPILE_WITH("{adam: {beta_2: 5}}")), "compile.optimizer")
    for factor in (".nan", ".inf", "-.inf"):
        train(f"rescale_{factor}", x(preprocess=f"  preprocess: [rescale: {factor}]\n"),
              f"data.preprocess[0].rescale: expected a finite number, got {factor}")
    for name, layers, message in [
            ("dense_units_2^61", "    - Dense: {units: 2305843009213693952}\n", "Dense.units: must be in [1, 2147483648]"),
            ("dense_units_1e12", "    - Dense: {units: 1e12}\n", "Dense.units: must be in"),
            ("dense_units_nan", "    - Dense: {units: .nan}\n", "got .nan"),
            ("dropout_rate_nan", "    - Dropout: {rate: .nan}\n", "Dropout.rate: expected a finite number"),
            ("dense_units_1e9", "    - Dense: {units: 1000000000}\n", "parameters")]:
        train(name, x(layers=layers), message)
    train("input_shape_1e9", x(layers="    - Dense: {units: 10}\n", input_shape="[1000000000]"), "1e+10 parameters")
    train("input_shape_1e11", x(layers="    - Dense: {units: 1}\n", input_shape="[100000000000]"),
          "model.input_shape: must be in")
    train("input_shape_2^32_values", x(layers="    - Dropout: {rate: 0.1}\n", input_shape="[65536, 65536]"),
          "values per sample")
    conv = "    - Conv2D: {{filters: 2, kernel_size: 3{}}}\n    - Flatten: {{}}\n    - Dense: {{units: 3}}\n"
    for name, opts, message in [
            ("conv_strides_0", ", strides: 0", "Conv2D.strides: must be in [1, 65536], got 0"),
            ("conv_strides_int64_max", ", strides: 9223372036854775807", "Conv2D.strides: must be in"),
            ("conv_strides_uint64_max", ", strides: 18446744073709551615", "Conv2D.strides: expected an integer"),
            ("conv_dilation_1e9", ", dilation_rate: 1000000000, padding: same", "Conv2D.dilation_rate: must be in"),
            ("conv_dilation_20", ", dilation_rate: 20, padding: same", "more than the 28x28 input")]:
        train(name, s.img_cfg(conv.format(opts)), message)
    train("conv_filters_2^61", s.img_cfg("    - Conv2D: {filters: 2305843009213693952, kernel_size: 3}\n"),
          "Conv2D.filters: must be in")
    train("maxpool_size_0", s.img_cfg("    - MaxPooling2D: {pool_size: 0}\n    - Flatten: {}\n    - Dense: {units: 3}\n"),
          "MaxPooling2D.pool_size")
    dropouts = "    - Dropout: {rate: 0.1}\n"
    train("10000_layers", x(layers="    - Dense: {units: 1}\n" + dropouts * 9999), None, ACCEPT, "summary",
          "summary_config")
    train("10001_layers", x(layers="    - Dense: {units: 1}\n" + dropouts * 10000), "more than the limit of 10000",
          verb="summary", baseline="summary_config")
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for c in "bcdefghij":
        p = chr(ord(c) - 1)
        bomb += f"{c}: &{c} [" + ", ".join([f"*{p}"] * 10) + "]\n"
    train("yaml_billion_laughs", bomb, "more than 100000 values once aliases are expanded")
    train("yaml_nested_100", "data: " + "[" * 100 + "]" * 100 + "\n", "nested deeper than 64 levels")
    train("yaml_over_1MiB", x() + "# " + "x" * (1 << 20) + "\n", "larger than the limit of 1048576 bytes")
    train("yaml_50MB", x() + ("# " + "x" * 1000 + "\n") * 50000, "larger than the limit of 1048576 bytes")
    train("unknown_key", x() + "fitt: {}\n", "fitt")
    # An unwritable -o or checkpoint is found before 100000 epochs, not after (test_hostile.cpp).
    out.append(Case("train_unwritable_output", ["train", s.xor_yaml, "--epochs", "100000", "-o",
                                                 s.path("out/no_such_dir/m.safetensors")], "train", REFUSE,
                    "cannot write there"))
    out.append(Case("train_unwritable_checkpoint", ["train", s.xor_yaml, "--epochs", "100000", "-o",
                                                     s.path("out/uw.safetensors"), "--checkpoint",
                                                     s.path("out/no_such_dir/c.safetensors")], "train", REFUSE,
                    "cannot write there"))
    return out


XOR_COMPILE = "compile:\n  optimizer: {adam: {learning_rate: 0.1}}\n  loss: binary_crossentropy\n  metrics: [accuracy]\n"


def XOR_COMPILE_WITH(optimizer):  # noqa: N802  (reads as a constant with a hole)
    return XOR_COMPILE.replace("{adam: {learning_rate: 0.1}}", optimizer)


def input_cases(s):
    """Images, NPY/NPZ, IDX and CSV inputs (test_hostile.cpp), FIFOs and bad options."""
    out = []

    def predict(name, rel, content, baseline, expect, message, model=None):
        path = s.write(f"input/{rel}", content)
        out.append(Case(name, ["predict", model or s.img_model, "--input", path], baseline, expect, message))

    raw28 = b"\x10" * (29 * 28)
    z = zlib.compress(raw28, 9)
    ok = png(28, 28, 1)
    for name, content, expect, message in [
            ("png_56x14", png(56, 14, 1), REFUSE, "56x14"),
            ("png_14x28_alpha", png(14, 28, 2), REFUSE, "14x28"),
            ("png_28x28_alpha", png(28, 28, 2), REFUSE, "grey+alpha"),
            ("png_18000x18000", png_raw(18000, 18000, 8, 0, b"\0" * 100), REFUSE, "18000x18000"),
            ("png_inflate_bomb", png_raw(28, 28, 8, 0, b"\0" * (10 << 20)), REFUSE, "inflates to more than"),
            ("png_no_iend", ok[:-12], REFUSE, "no IEND"),
            ("png_half", ok[:len(ok) // 2], REFUSE, "truncated PNG"),
            ("png_idat_cut", png_raw(28, 28, 8, 0, raw28, idat=z[:len(z) // 2]), REFUSE, "PNG image data"),
            ("png_16bit", png(28, 28, 1, 16, 0x1234), ACCEPT, None),
            ("gif", b"GIF89a......", REFUSE, "not a PNG, JPEG or BMP")]:
        predict(name, name + ".png", content, "image", expect, message)
    for name, content, expect, message in [
            ("bmp_30000x30000", bmp(30000, 30000, 0), REFUSE, "30000x30000"),
            ("bmp_truncated", bmp(28, 28, 100), REFUSE, "truncated BMP"),
            ("bmp_truncated_topdown", bmp(-28, -28, 1000), REFUSE, "truncated BMP"),
            ("bmp_rgb_to_grey", bmp(28, 28, 28 * 84), ACCEPT, None)]:
        predict(name, name + ".bmp", content, "image", expect, message)

    for name, content, message in [
            ("npy_declares_1e9_rows", npy("<f4", (1000000000, 784), b""), None),
            ("npy_header_length_past_end", b"\x93NUMPY\x01\x00\xff\xff{'descr'", None),
            ("npy_complex", npy("<c16", (2, 784), b"\0" * 16 * 2 * 784), None),
            ("npy_shape_overflow", npy("<f4", (2 ** 40, 2 ** 40), b""), None)]:
        predict(name, name + ".npy", content, "npy", REFUSE, message)
    big = npy("<f4", (4, 2), f32([0] * 8)) + b"\0" * (200 << 20)
    for name, members, message in [
            ("npz_member_inflates_200MB", {"x.npy": big, "y.npy": npy("<f4", (4,), f32([0, 1, 1, 0]))}, None),
            ("npz_declares_1e9_rows", {"x.npy": npy("<f4", (1000000000, 2), b""), "y.npy": npy("<f4", (4,), f32([0] * 4))},
             None),
            ("npz_no_y", {"x.npy": npy("<f4", (4, 2), f32([0] * 8))}, None)]:
        path = s.write(f"input/{name}.npz", npz(members))
        out.append(Case(name, ["eval", s.model, "--data", path], "eval_npz", REFUSE, message))
    # Not a case: a stored (uncompressed) member of 200 MB costs 200 MB, as every file is read
    # whole; that is the normal cost of a file that size, not a blow-up.

    for name, content, message in [
            ("idx_declares_1e9_images", idx_images(1000000000, 28, 28, b""), None),
            ("idx_truncated", idx_images(8, 28, 28, b"\0" * 100), None),
            ("idx_gz_inflates_200MB", gzip.compress(idx_images(8, 28, 28, b"\0" * 8 * 784) + b"\0" * (200 << 20), 1), None)]:
        predict(name, name + (".idx.gz" if "gz" in name else ".idx"), content, "idx", REFUSE, message)

    csv = dict(model=s.model)
    predict("csv_numeric_first_row", "nohead.csv", "0,1\n1,1\n1,0\n", "predict", ACCEPT, None, **csv)
    predict("csv_ragged", "ragged.csv", "x1,x2\n0,1\n1\n", "predict", REFUSE, "ragged.csv", **csv)
    predict("csv_10MB_line", "long.csv", "x1,x2\n" + "1," * (5 << 20) + "1\n", "predict", REFUSE, "found 5242881", **csv)
    predict("csv_10MB_header", "wide.csv", "," * (5 << 20) + "\n0,1\n", "predict", REFUSE, "more than the limit", **csv)

    # Text files through `tokenize` (test_tokenizer.cpp TokenizeCli, issue 12).
    tok_out = ["--kind", "char", "-o", s.path("out/hostile.tok")]
    for name, content, expect, message in [
            ("tokenize_invalid_utf8", b"fine\nnot \xf4\x90\x80\x80 fine\n", REFUSE, "invalid UTF-8 at byte 9 (line 2)"),
            ("tokenize_500k_percent_lines", b"%\n" * 500000, REFUSE, "the corpus is empty"),
            ("tokenize_200k_open_escapes", b"\x1b[0;" * 200000 + b"\n", ACCEPT, None)]:
        path = s.write(f"input/{name}", content)
        out.append(Case(name, ["tokenize", path] + tok_out, "tokenize", expect, message))

    # FIFOs are refused before they are opened (opening one for reading would block).
    fifo = Path(s.path("fifo"))
    for name in ("pipe.safetensors", "pipe.yaml", "pipe.csv", "pipe.npy", "pipe.png"):
        if not (fifo / name).exists():
            os.mkfifo(fifo / name)
    f = lambda name: str(fifo / name)  # noqa: E731
    for name, argv, baseline in [
            ("fifo_model_summary", ["summary", f("pipe.safetensors")], "summary"),
            ("fifo_model_predict", ["predict", f("pipe.safetensors"), "--input", s.path("input/in.csv")], "predict"),
            ("fifo_config_summary", ["summary", f("pipe.yaml")], "summary_config"),
            ("fifo_config_train", ["train", f("pipe.yaml")], "train"),
            ("fifo_input_csv", ["predict", s.model, "--input", f("pipe.csv")], "predict"),
            ("fifo_input_npy", ["predict", s.img_model, "--input", f("pipe.npy")], "npy"),
            ("fifo_input_png", ["predict", s.img_model, "--input", f("pipe.png")], "image"),
            ("fifo_eval_data", ["eval", s.model, "--data", f("pipe.csv")], "eval")]:
        out.append(Case(name, argv, baseline, REFUSE, "not a regular file (a FIFO"))

    p = ["predict", s.model, "--input", s.path("input/in.csv")]
    for name, argv, baseline, message in [
            ("option_top_k_0", p + ["--top-k", "0"], "predict", "--top-k must be at least 1, got 0"),
            ("option_top_k_-5", p + ["--top-k", "-5"], "predict", "--top-k must be at least 1"),
            ("option_batch_size_0", p + ["--batch-size", "0"], "predict", "--batch-size must be at least 1"),
            ("option_epochs_-1", ["train", s.xor_yaml, "--epochs", "-1"], "train", "--epochs must be at least 0"),
            ("option_verbose_3", ["train", s.xor_yaml, "--verbose", "3"], "train", "--verbose must be from 0 to 2"),
            ("option_profile_steps_0", ["train", s.xor_yaml, "--profile-steps", "0"], "train", "--profile-steps")]:
        out.append(Case(name, argv, baseline, REFUSE, message))
    return out


def cases(s):
    return model_file_cases(s) + checkpoint_cases(s) + config_cases(s) + input_cases(s)


# Corpus entries that are hostile (the rest are valid seeds, or arbitrary inputs fuzzing kept).
HOSTILE_SEEDS = {"bomb18000.png", "huge_header.bmp", "truncated.bmp", "truncated.png", "truncated.jpg",
                 "inflate_bomb.png", "crash_jpeg_dht_overflow.jpg", "empty_i1_bound.npy"}


# Corpora of formats no verb reads (token shards are written by `tokenize`, read by nothing yet).
NO_VERB_READS = {"fuzz_token_shard"}


def with_preprocessing(s, name, preprocessing):
    """The text model with `preprocessing` (JSON text) as its saved preprocessing."""
    meta, tensors = read_st(s.text_model)
    path = s.path(f"model/{name}.safetensors")
    write_st(path, dict(meta, preprocessing=preprocessing), tensors)
    return path


def tokenizer_kind(raw):
    """The kind tag of serialized tokenizer bytes, or "char" where there is none to read."""
    if len(raw) >= 12 and raw[:4] == b"NTKN":
        (length,) = struct.unpack("<I", raw[8:12])
        if 1 <= length <= 16 and len(raw) >= 12 + length:
            return raw[12:12 + length].decode(errors="replace")
    return "char"


def corpus_cases(s, corpus):
    """Every file of fuzz/corpus/, through the verb that reads files of its target's kind."""
    out = []
    for target in sorted(p for p in Path(corpus).iterdir() if p.is_dir()):
        if target.name in NO_VERB_READS:
            continue
        for f in sorted(target.iterdir()):
            kind = target.name.removeprefix("fuzz_")
            if kind == "text":
                argv, baseline = ["tokenize", f, "--kind", "char", "-o", s.path("out/corpus.tok")], "tokenize"
            elif kind in ("tokenizer", "pipeline"):
                # A model file's preprocessing: the tokenizer inside a tokenize step, or the whole list.
                raw = f.read_bytes()
                steps = raw.decode(errors="replace") if kind == "pipeline" else json.dumps([{
                    "kind": "tokenize", "tokenizer_kind": tokenizer_kind(raw), "max_length": 16,
                    "truncate": True, "tokenizer": base64.b64encode(raw).decode()}])
                model = with_preprocessing(s, f"corpus_{kind}_{f.name}", steps)
                argv, baseline = ["predict", model, "--text", "aeiou 123"], "predict_text"
            elif kind == "csv":
                argv, baseline = ["predict", s.model, "--input", f], "predict"
            elif kind in ("model", "safetensors"):
                argv, baseline = ["summary", f], "summary"
            elif kind == "npy" and f.suffix == ".npz":
                argv, baseline = ["eval", s.model, "--data", f], "eval_npz"
            elif kind in ("npy", "image", "idx"):
                argv, baseline = ["predict", s.img_model, "--input", f], {"image": "image"}.get(kind, kind)
            else:
                raise SystemExit(f"cost_check: no command reads fuzz/corpus/{target.name}; add it to corpus_cases")
            expect = REFUSE if f.name in HOSTILE_SEEDS else ANY
            out.append(Case(f"corpus/{target.name}/{f.name}", argv, baseline, expect, None))
    return out
