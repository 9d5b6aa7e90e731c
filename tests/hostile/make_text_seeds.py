#!/usr/bin/env python3
"""Writes the seeds of the text fuzz corpora (issue 12), a few valid inputs and a few broken ones each:
  fuzz/corpus/fuzz_text         fortune and line files, CSV/TSV text columns, invalid UTF-8
  fuzz/corpus/fuzz_tokenizer    char, bpe and unigram tokenizers written by `neutrino tokenize`, damaged ones
  fuzz/corpus/fuzz_token_shard  shards written by `neutrino tokenize --shards` and by hand, damaged ones
  fuzz/corpus/fuzz_pipeline     saved preprocessing JSON, a tokenize step holding a tokenizer as base64
Usage: make_text_seeds.py [--bin build/bin/neutrino] [--corpus fuzz/corpus]"""
import argparse
import base64
import json
import struct
import subprocess
import tempfile
from pathlib import Path

FORTUNES = ("\x1b[32mA fortune\x1b[m\nwith two lines\n%\nThe lazy dog naps.\n%\n"
            "\u5e8a\u524d\u660e\u6708\u5149 \U0001F600\n%\n")
LINES = "the quick brown fox\r\njumps over\n\n   \nthe lazy dog \u4e2d\u6587\n"


def shard(width, vocab, tokens, count=None):
    header = b"NTOK" + struct.pack("<III", 1, width, 32) + struct.pack("<QQ", vocab, len(tokens) if count is None else count)
    return header + b"".join(struct.pack("<H" if width == 2 else "<I", t) for t in tokens)


def envelope(kind, payload):
    return b"NTKN" + struct.pack("<II", 1, len(kind)) + kind + struct.pack("<Q", len(payload)) + payload


def tokenize_step(tok, kind, max_length=16, truncate=True):
    return {"kind": "tokenize", "tokenizer_kind": kind, "max_length": max_length, "truncate": truncate,
            "tokenizer": base64.b64encode(tok).decode()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    root = Path(__file__).resolve().parent.parent.parent
    parser.add_argument("--bin", default=str(root / "build" / "bin" / "neutrino"))
    parser.add_argument("--corpus", default=str(root / "fuzz" / "corpus"))
    args = parser.parse_args()
    corpus = Path(args.corpus)
    dirs = {name: corpus / f"fuzz_{name}" for name in ("text", "tokenizer", "token_shard", "pipeline")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)

    def write(kind, name, content):
        (dirs[kind] / name).write_bytes(content if isinstance(content, bytes) else content.encode())

    # Text: what the record splitters, the UTF-8 checks and the CSV text reader see.
    write("text", "fortunes", FORTUNES)
    write("text", "lines.txt", LINES)
    write("text", "texts.csv", 'text,label\n"a quoted, text",spam\nplain text,ham\n\u4e2d\u6587,ham\n')
    write("text", "texts.tsv", "article\ttopic\nfirst one\t1\nsecond \"quoted\" one\t0\n")
    write("text", "overlong.txt", b"fine\nnot \xc0\xaf fine\n")
    write("text", "surrogate.txt", b"a\xed\xa0\x80b\n")
    write("text", "cut_short.txt", b"ends in \xe4\xb8")
    write("text", "above_10ffff.txt", b"\xf4\x90\x80\x80\n")
    write("text", "open_escape", b"\x1b[31;1\n%\n\x1b\x1b[m%\n%")

    # Tokenizers and shards, trained by the CLI on the two text files.
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "fortunes").write_text(FORTUNES * 4)
        (tmp / "lines.txt").write_text(LINES * 8 + "".join(f"line {i} of the corpus, {i * 7} words\n" for i in range(40)))
        toks = {}
        for kind, vocab in [("char", None), ("bpe", "340"), ("unigram", "340")]:
            out, shard_out = tmp / f"{kind}.tok", tmp / f"{kind}.shard"
            cmd = [args.bin, "tokenize", str(tmp / "fortunes"), str(tmp / "lines.txt"), "--kind", kind,
                   "-o", str(out), "--shards", str(shard_out)] + (["--vocab-size", vocab] if vocab else [])
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            toks[kind] = out.read_bytes()
            write("tokenizer", f"{kind}.tok", toks[kind])
            if kind != "unigram":
                write("token_shard", f"{kind}.shard", shard_out.read_bytes()[:32 + 2 * 300])
    # The shards above are cut to 300 tokens, so their headers must say so.
    for name in ("char.shard", "bpe.shard"):
        raw = (dirs["token_shard"] / name).read_bytes()
        write("token_shard", name, raw[:24] + struct.pack("<Q", (len(raw) - 32) // 2) + raw[32:])

    char = toks["char"]
    write("tokenizer", "char_truncated.tok", char[:len(char) - 3])
    write("tokenizer", "char_unsorted.tok", envelope(b"char", struct.pack("<III", 2, 98, 97)))
    write("tokenizer", "char_surrogate.tok", envelope(b"char", struct.pack("<II", 1, 0xD800)))
    write("tokenizer", "unknown_kind.tok", envelope(b"word", b"x"))
    write("tokenizer", "bpe_half.tok", toks["bpe"][:len(toks["bpe"]) // 2])
    bpe_payload = toks["bpe"][23:]  # "NTKN", version, kind length, "bpe", payload length
    write("tokenizer", "bpe_tagged_unigram.tok", envelope(b"unigram", bpe_payload))

    # Shards: both widths, and the damage TokenShard must refuse.
    write("token_shard", "u32.shard", shard(4, 70000, [0, 3, 69999, 12, 65536, 7, 3, 1]))
    write("token_shard", "empty.shard", shard(2, 10, []))
    write("token_shard", "token_past_vocab.shard", shard(2, 10, [1, 2, 10, 3]))
    write("token_shard", "count_lies.shard", shard(2, 10, [1, 2, 3], count=1 << 40))
    write("token_shard", "width_3.shard", shard(2, 10, [1, 2, 3])[:8] + struct.pack("<I", 3) + shard(2, 10, [1, 2, 3])[12:])
    write("token_shard", "vocab_2pow33.shard", shard(4, 1 << 33, [1, 2]))
    write("token_shard", "truncated.shard", shard(2, 10, [1, 2, 3, 4])[:-1])

    # Saved preprocessing, as a model file holds it.
    def pipeline(name, steps):
        write("pipeline", name, steps if isinstance(steps, str) else json.dumps(steps, separators=(",", ":")))

    pipeline("char_tokenize.json", [tokenize_step(char, "char")])
    pipeline("unigram_tokenize.json", [tokenize_step(toks["unigram"], "unigram", 8, False)])
    pipeline("numbers.json", [{"kind": "rescale", "factor": 0.5},
                              {"kind": "standardize", "shape": [2, 2], "mean": [0, 1, 2, 3], "std": [1, 0, 2, 0.5]},
                              {"kind": "one_hot"}])
    pipeline("augment.json", [{"kind": "random_flip"}, {"kind": "random_crop", "padding": 2}])
    pipeline("kind_mismatch.json", [tokenize_step(char, "bpe")])
    pipeline("bad_base64.json", [dict(tokenize_step(char, "char"), tokenizer="AB=C")])
    pipeline("std_shape_lies.json", [{"kind": "standardize", "shape": [3], "mean": [0], "std": [1]}])
    # Findings of fuzz_pipeline: statistics beyond float32 (an infinite mean, a std that rounds to 0).
    pipeline("mean_1e300.json", [{"kind": "standardize", "shape": [1], "mean": [1e300], "std": [1]}])
    pipeline("std_1e-300.json", [{"kind": "standardize", "shape": [1], "mean": [1], "std": [1e-300]}])
    pipeline("not_a_list.json", '{"kind": "rescale", "factor": 2}')
    pipeline("nested.json", "[" * 70 + "]" * 70)
    for d in dirs.values():
        print(f"{d}: {len(list(d.iterdir()))} files, {sum(f.stat().st_size for f in d.iterdir())} bytes")


if __name__ == "__main__":
    main()
