#!/usr/bin/env python3
"""Writes the image seeds of fuzz/corpus/fuzz_image: small valid PNGs and BMPs of each kind
stb_image decodes, and the hostile files of tests/test_hostile.cpp (a header declaring
18000x18000, a BMP declaring 30000x30000, truncated files, a 16-bit PNG, an inflate bomb).
JPEG seeds come from make_seeds.sh (it needs an encoder). Usage: make_image_seeds.py OUT_DIR"""
import struct
import sys
import zlib
from pathlib import Path


def chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png(width, height, depth, color, raw, extra=b""):
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra +
            chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def rows(width, height, bytes_per_pixel, filter_type=0):
    out = b""
    for y in range(height):
        out += bytes([filter_type]) + bytes((x * 37 + y * 11) % 256 for x in range(width * bytes_per_pixel))
    return out


def bmp(width, height, bpp, pixel_bytes, palette=b""):
    offset = 54 + len(palette)
    header = b"BM" + struct.pack("<IHHI", offset + len(pixel_bytes), 0, 0, offset)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, bpp, 0, len(pixel_bytes), 2835, 2835,
                       len(palette) // 4, 0)
    return header + info + palette + pixel_bytes


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    seeds = {
        "grey8x8.png": png(8, 8, 8, 0, rows(8, 8, 1)),
        "grey_alpha4x4.png": png(4, 4, 8, 4, rows(4, 4, 2, 1)),
        "rgb5x3.png": png(5, 3, 8, 2, rows(5, 3, 3, 2)),
        "rgba3x3.png": png(3, 3, 8, 6, rows(3, 3, 4, 4)),
        "grey16_4x4.png": png(4, 4, 16, 0, rows(4, 4, 2, 3)),
        "palette4x4.png": png(4, 4, 8, 3, rows(4, 4, 1),
                              chunk(b"PLTE", bytes(i * 7 % 256 for i in range(256 * 3)))),
        "rgb4x4.bmp": bmp(4, 4, 24, bytes(range(48))),
        "rgb3x2_topdown.bmp": bmp(3, -2, 24, bytes(range(24))),
        "argb2x2.bmp": bmp(2, 2, 32, bytes(range(16))),
        "pal8_4x2.bmp": bmp(4, 2, 8, bytes(range(8)), bytes(i % 256 for i in range(32))),
        # Hostile: declared sizes far over any limit, truncation, an inflate bomb.
        "bomb18000.png": png(18000, 18000, 8, 0, bytes(18001 * 2)),
        "huge_header.bmp": bmp(30000, 30000, 24, b""),
        "truncated.bmp": bmp(28, 28, 24, bytes(100)),
        "truncated.png": png(8, 8, 8, 0, rows(8, 8, 1))[:60],
        "inflate_bomb.png": png(8, 8, 8, 0, bytes(1 << 20)),
    }
    for name, data in seeds.items():
        (out / name).write_bytes(data)


if __name__ == "__main__":
    main()
