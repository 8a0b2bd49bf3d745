#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Writes the seed inputs of the rpc fuzz target (corpus/rpc/*): two
# selector bytes (see fuzz_rpc.c), then 64-byte struct wave_msg records
# laid out as in include/wave/rpc_msg.h. Rerun after changing the format:
#   python3 tests/fuzz/make_rpc_corpus.py tests/fuzz/corpus/rpc
import os
import struct
import sys

ADD, DEL, BUCKETS, LOAD, ARRIVALS, REPORT, CLASS_LOAD = range(0x301, 0x308)
MOVE, PRESTAGE, OUTCOME = 0x340, 0x341, 0x380
NONE = 0xFFFFFFFF


def rec(type_, payload, flags=0):
    assert len(payload) == 48
    return struct.pack("<HHIQ", type_, flags, 0, 0) + payload


def worker(type_, w, gen, now=0):
    return rec(type_, struct.pack("<IIQ32x", w, gen, now))


def buckets(first, epoch, entries):
    body = struct.pack("<II", first, epoch) + b"".join(struct.pack("<II", w, s) for w, s in entries)
    return rec(BUCKETS, body.ljust(48, b"\0"), len(entries))


def load(w, depth, busy, done, service, worst):
    return rec(LOAD, struct.pack("<IIQQQQ8x", w, depth, busy, done, service, worst))


def arrivals(pairs):
    body = b"".join(struct.pack("<II", b, n) for b, n in pairs)
    return rec(ARRIVALS, body.ljust(48, b"\0"), len(pairs))


def report(period, now=0):
    return rec(REPORT, struct.pack("<QQ32x", period, now))


def class_load(entry, completions, service, longest=0):
    return rec(CLASS_LOAD, struct.pack("<IIQQQ16x", entry, 0, completions, service, longest))


def outcome(decision, target, w, gen, seq, epoch, cur, result=0, why=0, now=0):
    return rec(OUTCOME, struct.pack("<IIIIIIQHBB12x", target, w, gen, seq, epoch, cur, now,
                                    decision, result, why))


def seeds():
    # 8 buckets, 4 workers, 2 dispatchers; the policy in the top bits.
    for pol, name in ((0x00, "hash"), (0x40, "rebalance"), (0x80, "jsq")):
        base = bytes([0x03 | pol, 0x23])
        table = buckets(0, 1, [(0, 1)] * 5) + buckets(5, 1, [(0, 1)] * 3)
        yield name + "_period", base + worker(ADD, 0, 1) + worker(ADD, 1, 1) + table + \
            load(0, 9, 900000, 90, 900000, 20000) + load(1, 0, 0, 0, 0, 0) + \
            arrivals([(0, 500), (1, 400), (2, 10), (3, 10), (4, 10), (5, 10)]) + \
            report(1000000, 10) + outcome(MOVE, 0, 1, 1, 1, 1, 1) + report(1000000, 20)
    # DARC: 8 buckets and 2 classes (entries 8 and 9), 4 workers, 2 pick
    # slots; the classes' service times sort them.
    base = bytes([0x03 | 0x10 | 0xC0, 0x23])
    table = buckets(0, 1, [(0, 1)] * 5) + buckets(5, 1, [(0, 1)] * 5)
    yield "darc_classes", base + worker(ADD, 0, 1) + worker(ADD, 1, 1) + worker(ADD, 2, 1) + \
        table + load(0, 3, 500000, 10, 500000, 100000) + load(1, 0, 0, 0, 0, 0) + \
        class_load(8, 50, 500000) + class_load(9, 2, 1000000) + arrivals([(8, 50), (9, 2)]) + \
        report(1000000, 10) + outcome(PRESTAGE, 0, 1, 1, 0, 1, 1) + report(1000000, 20)
    yield "refusals", bytes([0x02, 0x01]) + worker(ADD, 0, 1) + worker(ADD, 0, 2) + \
        worker(DEL, 1, 1) + buckets(0, 1, [(1, 1)]) + load(1, 0, 0, 0, 0, 0) + \
        outcome(MOVE, 0, 0, 1, 1, 1, 0) + rec(MOVE, struct.pack("<IIII32x", 0, 0, 1, 0))
    yield "garbage", bytes([0xff, 0xff]) + bytes(range(64)) + b"\xff" * 64 + \
        struct.pack("<HHIQ", ARRIVALS, 9, 0, 0) + bytes(48)
    yield "aborts", bytes([0x42, 0x11]) + worker(ADD, 0, 1) + worker(ADD, 1, 1) + \
        buckets(0, 1, [(0, 1)] * 4) + arrivals([(0, 100)]) + report(1000) + \
        outcome(MOVE, 0, 1, 1, 1, 1, 0, 1, 2) + outcome(PRESTAGE, 0, 1, 1, 0, 1, 1) + \
        worker(DEL, 1, 1) + report(1000)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "rpc")
    os.makedirs(out, exist_ok=True)
    for name, data in seeds():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
