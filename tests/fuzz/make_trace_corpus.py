#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Writes the seed inputs of the trace reader's fuzz target (corpus/trace/*):
# small trace files laid out as lib/trace/trace.h says. Rerun after changing
# the format:
#   python3 tests/fuzz/make_trace_corpus.py tests/fuzz/corpus/trace
import os
import struct
import sys


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def header(domain=1, plugin=b"sched_fifo", params=b"{}", setup=(), major=3):
    fixed = b"WAVETRC\0" + struct.pack("<HH", major, 0)
    body = struct.pack("<IIQQHHI", domain, 0, 7, 1000, len(plugin), len(setup), len(params))
    var = plugin + params + b"".join(struct.pack("<HH", t, 0) + p for t, p in setup)
    length = len(fixed) + 4 + len(body) + len(var) + 4
    h = fixed + struct.pack("<I", length) + body + var
    return h + struct.pack("<I", crc32c(h))


def leb(v):
    out = b""
    while v >= 0x80:
        out += bytes([(v & 0x7F) | 0x80])
        v >>= 7
    return out + bytes([v])


def record2(kind, dt, type_, payload):
    """A record of formats 1 and 2: the payload without its trailing zeros."""
    payload = payload.rstrip(b"\0")
    return bytes([kind << 6 | len(payload)]) + leb(dt) + struct.pack("<HH", type_, 0) + payload


def records3(recs):
    """Format 3 records of (kind, dt, type, payload) in one block: types
    and words repeated from before are references (trace.h)."""
    out, prev, last = b"", [0] * 6, {}
    for kind, dt, type_, payload in recs:
        words = struct.unpack("<6Q", payload)
        same = last.get(kind) == type_
        rec = bytes([kind << 6 | (0x20 if same else 0)]) + leb(dt)
        if not same:
            rec += struct.pack("<HH", type_, 0)
            last[kind] = type_
        codes, lit = 0, b""
        for k, w in enumerate(words):
            if w == 0:
                code = 0
            elif w == prev[k]:
                code = 9
            else:
                code = (w.bit_length() + 7) // 8
                lit += w.to_bytes(code, "little")
            codes |= code << 4 * k
        out += rec + codes.to_bytes(3, "little") + lit
        prev = list(words)
    return out, len(recs)


def block(recs, base=1000, lost=0, major=3):
    """A block of format @major: 2 and 3 say how many records were lost
    before it; @recs are (kind, dt, type, payload)."""
    if major >= 3:
        pay, n = records3(recs)
    else:
        pay, n = b"".join(record2(*r) for r in recs), len(recs)
    h = struct.pack("<III", 0x4B4C4257, len(pay), n)
    tail = struct.pack("<Q", base) + (struct.pack("<Q", lost) if major >= 2 else b"") + pay
    return h + struct.pack("<I", crc32c(h + tail)) + tail


SETUP, NEW, OUTCOME, RUN = 0x100, 0x101, 0x180, 0x140


def seeds():
    new = struct.pack("<QQQQIBBHQ", 1, 1, 0, 0, 0xFFFFFFFF, 1, 0, 0, 0)
    run = struct.pack("<QQII24x", 1, 1, 0, 0)
    out = struct.pack("<QQQIHBB16x", 1, 1, 5, 0, RUN, 0, 0)
    recs = [(0, 0, NEW, new), (1, 3, RUN, run), (0, 200, OUTCOME, out), (1, 0, RUN, run)]
    setup = [(SETUP, struct.pack("<I44x", 4))]
    yield "empty", header()
    yield "one_block", header(setup=setup) + block(recs)
    yield "two_blocks", header(setup=setup) + block(recs) + block(recs[::-1], 5000)
    yield "long_times", header() + block([(2, 1 << 62, 0x8000, bytes(range(1, 49)))])
    yield "wrong_version", header(major=4) + block(recs)
    yield "format_2", header(setup=setup, major=2) + block(recs, major=2) + block(recs, 5000, major=2)
    yield "format_1", header(setup=setup, major=1) + block(recs, major=1) + block(recs, 5000, major=1)
    yield "lost", header() + block(recs, lost=3) + block([], 6000, lost=1 << 63) + block([], 7000, lost=1 << 63)
    # Found by fuzzing: a later block's base time before the previous
    # record's (the reader used to give records going back in time).
    yield "time_goes_back", header() + block(recs, 5000) + block(recs, 1000)
    yield "truncated", (header() + block(recs))[:-5]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "trace")
    os.makedirs(out, exist_ok=True)
    for name, data in seeds():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
