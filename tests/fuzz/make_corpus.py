#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Writes the seed inputs of the sched fuzz target (corpus/sched/*): one
# selector byte (CPU count - 1 in the low 4 bits, policy in the top bit:
# 0 fifo, 1 shinjuku), then 64-byte struct wave_msg records laid out as in
# include/wave/sched_msg.h. Rerun after changing the message format:
#   python3 tests/fuzz/make_corpus.py tests/fuzz/corpus/sched
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


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "sched")
    os.makedirs(out, exist_ok=True)
    for name, data in seeds():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
