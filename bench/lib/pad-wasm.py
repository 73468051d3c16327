#!/usr/bin/env python3
"""pad-wasm.py IN OUT SIZE: copies the WebAssembly module or component IN to
OUT with a custom section appended so that OUT is SIZE bytes.

A custom section (id 0, LEB128 size, LEB128-prefixed name, bytes) is valid
anywhere in a module or a component and is ignored by compilation: OUT runs
like IN, and only its transfer and hashing cost grows."""

import sys

NAME = b"krew-wasm-bench-padding"


def leb128(n):
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def main(src, dst, size):
    wasm, size = open(src, "rb").read(), int(size)
    if wasm[:4] != b"\0asm":
        raise SystemExit(f"pad-wasm.py: {src} is not WebAssembly")
    name = leb128(len(NAME)) + NAME
    # The section's own header grows with its size: find the payload that fits.
    payload = size - len(wasm) - 1 - len(name)
    while payload > 0 and len(wasm) + 1 + len(leb128(len(name) + payload)) + len(name) + payload > size:
        payload -= 1
    if payload <= 0:
        raise SystemExit(f"pad-wasm.py: {src} is already {len(wasm)} bytes")
    section = b"\0" + leb128(len(name) + payload) + name + bytes(payload)
    open(dst, "wb").write(wasm + section)


main(*sys.argv[1:])
