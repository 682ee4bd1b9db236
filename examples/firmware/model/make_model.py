#!/usr/bin/env python3
"""Writes the firmware's keyword-spotting model: deterministic weights and one input, as
little-endian f32 blobs (`*.bin`, raw PyTorch layouts) next to this script. The firmware's
build script packs them for simdnn and computes the host's result; the firmware reads the
packed blobs from flash in place. Run again only to change the model:

    python3 examples/firmware/model/make_model.py

The model (sizes in src/kws.rs): one feature per 10 ms frame, 64 frames; a causal conv1d
of 8 filters over 5 frames with stride 2 and ReLU; a GRU of 16 units over its 32 frames;
additive attention pooling (16 dims) over the GRU states, the last state as the query; a
dense layer to 4 classes; softmax.
"""
import math
import os
import struct

FRAMES, TAPS, CONV, HIDDEN, ATTN, CLASSES = 64, 5, 8, 16, 16, 4

state = 0x2545F491


def uniform():
    """xorshift32 in [-1, 1): the same numbers on every machine."""
    global state
    state ^= (state << 13) & 0xFFFFFFFF
    state ^= state >> 17
    state ^= (state << 5) & 0xFFFFFFFF
    return state / 2**31 - 1.0


def weights(n, fan_in):
    bound = 1.0 / math.sqrt(fan_in)
    return [uniform() * bound for _ in range(n)]


def write(name, values):
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), name + ".bin")
    with open(path, "wb") as f:
        f.write(struct.pack("<%df" % len(values), *values))


# Conv1d, OHWI [CONV][1][TAPS][1] (PyTorch's [CONV][1][TAPS] is the same order), bias.
write("conv_w", weights(CONV * TAPS, TAPS))
write("conv_b", weights(CONV, TAPS))
# GRU, PyTorch: weight_ih [3 * HIDDEN][CONV], weight_hh [3 * HIDDEN][HIDDEN] (gates r, z,
# n), biases [3 * HIDDEN].
write("gru_w_ih", weights(3 * HIDDEN * CONV, HIDDEN))
write("gru_w_hh", weights(3 * HIDDEN * HIDDEN, HIDDEN))
write("gru_b_ih", weights(3 * HIDDEN, HIDDEN))
write("gru_b_hh", weights(3 * HIDDEN, HIDDEN))
# Additive pooling: W_q [ATTN][HIDDEN], W_k [ATTN][HIDDEN], bias [ATTN], w [ATTN].
write("pool_w_q", weights(ATTN * HIDDEN, HIDDEN))
write("pool_w_k", weights(ATTN * HIDDEN, HIDDEN))
write("pool_b", weights(ATTN, HIDDEN))
write("pool_w", weights(ATTN, ATTN))
# Classifier [CLASSES][HIDDEN], bias.
write("dense_w", weights(CLASSES * HIDDEN, HIDDEN))
write("dense_b", weights(CLASSES, HIDDEN))
# One utterance: a log-energy-like envelope, quiet, a two-syllable burst, quiet, with noise.
envelope = [
    (1.5 if 12 <= t < 24 else 1.0 if 30 <= t < 44 else 0.0) + 0.1 * uniform() for t in range(FRAMES)
]
write("input", envelope)
