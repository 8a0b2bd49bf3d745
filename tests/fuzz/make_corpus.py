#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Writes the seed inputs of the fuzz targets.
# sched (corpus/sched/*): one selector byte (CPU count - 1 in the low 4
# bits, policy in the top bit: 0 fifo, 1 shinjuku), then 64-byte struct
# wave_msg records laid out as in include/wave/sched_msg.h.
# mem (corpus/mem/*): one selector byte (see tests/fuzz/fuzz_mem.c), then
# records laid out as in include/wave/mem_msg.h.
# Rerun after changing a message format:
#   python3 tests/fuzz/make_corpus.py            (both, into corpus/)
#   python3 tests/fuzz/make_corpus.py DIR/sched  (or DIR/mem: one of them)
import os
import struct
import sys

NEW, WAKE, BLOCK, YIELD, PREEMPTED, DEAD, IDLE, TICK = range(0x101, 0x109)
RUN, PRESTAGE, PREEMPT, OUTCOME = 0x140, 0x141, 0x142, 0x180
NONE = 0xFFFFFFFF


def rec(type_, payload):
    assert len(payload) == 48
    return struct.pack("<HHIQ", type_, 0, 0, 0) + payload


def new(task, seq, state=1, hint_kind=0, hint=0, cpu=NONE, now=0):
    return rec(NEW, struct.pack("<QQQQIBBHQ", task, seq, now, hint, cpu, state, hint_kind, 0, 0))


def ev(type_, task, seq, cpu, now=0):
    return rec(type_, struct.pack("<QQQII16x", task, seq, now, cpu, 0))


def cpu_ev(type_, cpu, now=0):
    return rec(type_, struct.pack("<IIQ32x", cpu, 0, now))


def outcome(decision, task, seq, cpu, result=0, now=0):
    return rec(OUTCOME, struct.pack("<QQQIHBB16x", task, seq, now, cpu, decision, result, 0))


def seeds():
    yield "fifo_lifecycle", bytes([3]) + new(1, 1) + outcome(RUN, 1, 1, 0) + \
        ev(BLOCK, 1, 2, 0, 100) + cpu_ev(IDLE, 0, 110) + ev(WAKE, 1, 3, NONE, 120) + \
        outcome(RUN, 1, 3, 0, 0, 130) + ev(DEAD, 1, 4, 0, 200)
    yield "fifo_many", bytes([1]) + b"".join(new(i, 1) for i in range(1, 9)) + \
        outcome(RUN, 1, 1, 0) + outcome(RUN, 2, 1, 1) + ev(YIELD, 1, 2, 0, 50) + \
        ev(PREEMPTED, 2, 2, 1, 60)
    yield "shinjuku_slice", bytes([0x80]) + new(1, 1) + outcome(RUN, 1, 1, 0) + \
        new(2, 1) + cpu_ev(TICK, 0, 100000) + ev(PREEMPTED, 1, 2, 0, 100001) + \
        outcome(PRESTAGE, 2, 1, 0, 0, 100001) + outcome(PREEMPT, 1, 1, 0, 1)
    yield "aborts", bytes([2]) + new(5, 7) + outcome(RUN, 5, 7, 0, 1) + \
        outcome(RUN, 5, 7, 0, 2) + ev(DEAD, 5, 8, NONE) + outcome(RUN, 5, 7, 0, 2)
    yield "refusals", bytes([0]) + ev(WAKE, 9, 2, NONE) + new(1, 5, 0) + new(1, 6, 0) + \
        ev(WAKE, 1, 4, NONE) + ev(BLOCK, 1, 6, 0) + cpu_ev(TICK, 7) + \
        rec(RUN, struct.pack("<QQII24x", 1, 1, 0, 0))
    yield "garbage", bytes([15]) + bytes(range(64)) + b"\xff" * 64 + \
        struct.pack("<HHIQ", NEW, 1, 0, 0) + bytes(48)
    yield "deadlines", bytes([0x81]) + new(1, 1, 1, 2, 500) + new(2, 1, 1, 1, 3) + \
        new(3, 1, 0, 0, 0, 1) + outcome(RUN, 1, 1, 0) + outcome(RUN, 2, 1, 1)


# ---- mem ----------------------------------------------------------------
M_ADD, M_DEL, M_CHUNK, M_SAMPLES, M_FAULT, M_PRESSURE, M_TICK = range(0x201, 0x208)
M_MIGRATE, M_VICTIM, M_PREFETCH, M_KEEP, M_OUTCOME = 0x240, 0x241, 0x242, 0x260, 0x280


def region_add(region, count, tier=0, seq=1, chunk_size=65536, now=0):
    return rec(M_ADD, struct.pack("<IIQQQQQ", region, tier, count, chunk_size, seq, now, 0))


def region_del(region, now=0):
    return rec(M_DEL, struct.pack("<IIQQQQQ", region, 0, 0, 0, 0, now, 0))


def chunk_ev(type_, chunk, seq, tier, now=0):
    return rec(type_, struct.pack("<QQQII16x", chunk, seq, now, tier, 0))


def samples(region, entries):
    idx = [i for i, _ in entries] + [0] * (8 - len(entries))
    acc = [a for _, a in entries] + [0] * (8 - len(entries))
    return rec(M_SAMPLES, struct.pack("<IB3x8I8B", region, len(entries), *idx, *acc))


def tick(now):
    return rec(M_TICK, struct.pack("<IIQQ24x", 0, 0, 0, now))


def pressure(tier, free, now=0):
    return rec(M_PRESSURE, struct.pack("<IIQQ24x", tier, 0, free, now))


def m_outcome(decision, chunk, seq, tier, result=0, new_seq=0, now=0):
    return rec(M_OUTCOME, struct.pack("<QQQQIHBBQ", chunk, seq, new_seq, now, tier, decision,
                                      result, 0, 0))


def cid(region, index):
    return region << 32 | index


MS = 1000000


def seeds_mem():
    hot = b"".join(samples(1, [(i, 9) for i in range(8)]) + tick(t * 10 * MS) for t in range(1, 6))
    # selector: policy (low bits), far (4), three tiers (8), tier 0 capacity - 1 (top 4 bits)
    yield "hemem_promote", bytes([0x30]) + region_add(1, 16, 1) + hot + \
        m_outcome(M_MIGRATE, cid(1, 0), 1, 0, 0, 2)
    yield "memtis_far", bytes([0x35]) + region_add(1, 8, 0) + region_add(2, 32, 1) + \
        samples(1, [(1, 3), (2, 200)]) + tick(MS) + chunk_ev(M_FAULT, cid(2, 5), 2, 0, MS) + \
        pressure(0, 0, MS) + tick(2 * MS) + m_outcome(M_VICTIM, cid(1, 0), 1, 1, 1)
    yield "sdfm_ages", bytes([0x0e]) + region_add(3, 64, 0) + tick(MS) + \
        tick(3000 * MS) + samples(3, [(63, 1)]) + tick(6000 * MS) + region_del(3) + \
        m_outcome(M_MIGRATE, cid(3, 0), 1, 1, 2)
    yield "refusals", bytes([0x00]) + region_add(1, 4) + region_add(1, 4) + \
        chunk_ev(M_CHUNK, cid(1, 9), 5, 1) + chunk_ev(M_CHUNK, cid(1, 1), 1, 1) + \
        chunk_ev(M_FAULT, cid(1, 1), 2, 0) + samples(1, [(4, 1)]) + region_add(2, 1 << 20) + \
        rec(M_MIGRATE, struct.pack("<QQII24x", cid(1, 0), 1, 1, 0))
    # memtis over tier 0 (capacity 4) counted unevenly: its keep pass hints the
    # most counted chunks; a KEEP from the host is refused as a decision is
    counts = b"".join(samples(1, [(i, i + 1) for i in range(8)]) + tick(t * 10 * MS)
                      for t in range(1, 9))
    yield "keep_pass", bytes([0x31]) + region_add(1, 8, 0) + counts + \
        rec(M_KEEP, struct.pack("<QQII24x", cid(1, 0), 1, 0, 0))
    yield "garbage", bytes([0xff]) + bytes(range(64)) + b"\xff" * 64 + \
        struct.pack("<HHIQ", M_ADD, 1, 0, 0) + bytes(48)


def main():
    root = os.path.join(os.path.dirname(__file__), "corpus")
    outs = [sys.argv[1]] if len(sys.argv) > 1 else [os.path.join(root, "sched"),
                                                     os.path.join(root, "mem")]
    for out in outs:
        os.makedirs(out, exist_ok=True)
        gen = seeds_mem if os.path.basename(os.path.normpath(out)) == "mem" else seeds
        for name, data in gen():
            with open(os.path.join(out, name), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
