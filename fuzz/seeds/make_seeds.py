#!/usr/bin/env python3
"""Writes the committed seed inputs of the fuzz targets: one file per deep path that a
fuzzer starting from nothing reaches late or never (Winograd, depthwise, the few-channels
and implicit-GEMM convolutions, tiled and causal attention with windows and masks, long
recurrent sequences, big batches, strided streams). Each seed spells out the target's own
decoding of its first bytes (see the comments there), followed by deterministic
pseudo-random value bytes. `.ci/fuzz` and `.ci/fuzz-campaign` run every target from its
corpus and these seeds.

    python3 fuzz/seeds/make_seeds.py   # rewrites fuzz/seeds/<target>/<name>
"""
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))


def values(n, seed):
    rng = random.Random(seed)
    return bytes(rng.randrange(256) for _ in range(n))


def small_i16(n, seed):
    """n little-endian i16 values of moderate size (the targets scale them to about +-1)."""
    rng = random.Random(seed)
    out = bytearray()
    for _ in range(n):
        out += rng.randrange(-9000, 9000).to_bytes(2, "little", signed=True)
    return bytes(out)


def conv(in_h, in_w, in_c, out_c, kh, kw, batch=1, stride=1, dilation=1, groups=1,
         padding=1, direct=False, layout=0, act=1):
    def dim(v):
        # Selector 1 is a power of two (any size); selector 3 is `byte % small`.
        if v >= 8 and v & (v - 1) == 0:
            return [1, v.bit_length() - 1]
        return [3, v]

    head = []
    for v in (in_h, in_w, in_c, out_c, kh, kw, batch, stride, stride, dilation, dilation, groups):
        head += dim(v)
    head += [padding, int(direct), layout, act, 0, 0]
    head = bytes(head).ljust(40, b"\0")
    return head + values(1500, in_h * 1000 + in_c * 10 + kh)


SEEDS = {
    "conv": {
        "winograd_16ch": conv(10, 12, 16, 8, 3, 3),
        "winograd_batch2": conv(7, 9, 8, 12, 3, 3, batch=2, padding=0),
        "depthwise_8ch": conv(10, 16, 8, 16, 3, 3, groups=8),
        "depthwise_s2": conv(11, 13, 8, 8, 3, 3, stride=2, groups=8),
        "pointwise": conv(6, 7, 8, 32, 1, 1, padding=0),
        "few_channels": conv(9, 15, 3, 16, 3, 3, stride=2),
        "implicit_gemm": conv(8, 10, 7, 24, 3, 3, stride=2, dilation=2),
        "one_channel": conv(5, 19, 1, 8, 3, 4),
        "grouped": conv(6, 8, 4, 8, 3, 3, groups=2, act=4),
    },
    # kv_heads % 3, group % 3 + 1, q_len % 80, kv_len % 140, d % 20, dv % 20 + 1, options
    # (1 causal, 2 window, 4 scale, 16/32 mask), causal offset, window, heads/wrong.
    "attention": {
        "tiled": bytes([2, 1, 70, 130, 16, 14, 0, 0, 0, 0]) + small_i16(3000, 1),
        "tiled_causal": bytes([1, 2, 66, 100, 8, 7, 1, 30, 0, 0]) + small_i16(3000, 2),
        "causal_window": bytes([2, 0, 64, 90, 12, 3, 3, 20, 17, 0]) + small_i16(3000, 3),
        "mask_per_head": bytes([1, 1, 40, 70, 5, 4, 0x20, 0, 0, 0]) + small_i16(3000, 4),
    },
    # input % 12 + 1, hidden % 40 + 1, batch % 4, steps (> 191: % 64), options, wrong, cell.
    "recurrent": {
        "gru_long": bytes([7, 33, 3, 255, 1, 0, 2, 0]) + small_i16(3000, 5),
        "lstm_projection_long": bytes([4, 38, 2, 240, 3, 0, 5, 17]) + small_i16(3000, 6),
        "rnn_relu_long": bytes([11, 39, 1, 230, 0, 0, 1, 0]) + small_i16(3000, 7),
    },
    # input % 20 + 1, hidden % 70 + 1, batch % 5, steps % 5 + 1, wrong, clip, cell, proj.
    "recurrent_step": {
        "gru_wide_batch": bytes([15, 64, 4, 4, 0, 0, 2, 0]) + small_i16(3000, 8),
        "lstm_projection": bytes([9, 48, 3, 3, 0, 0, 6, 21]) + small_i16(3000, 9),
    },
    # kv_heads % 3, group % 3 + 1, head_dim % 12, embed % 24, tokens % 40, wrong, options.
    "mha": {
        "grouped_causal": bytes([2, 1, 8, 16, 36, 0, 3, 2]) + small_i16(2000, 10),
        "one_kv_head": bytes([1, 2, 5, 23, 21, 0, 1, 0]) + small_i16(2000, 11),
    },
    # query_dim % 40, key_dim % 40, attn_dim % 70, n % 150, value_dim % 20, wrong, wrong2.
    "pooling": {
        "many_items": bytes([16, 24, 40, 130, 12, 0x80, 0, 0]) + small_i16(3000, 12),
        "wide_projection": bytes([33, 7, 67, 45, 19, 0, 0, 0]) + small_i16(3000, 13),
    },
    # out % 70, in % 40, x_len % 200, y_len % 200, bias/tanh.
    "dense": {
        "batch_of_five": bytes([37, 39, 195, 185, 1]) + small_i16(3000, 14),
    },
    # in_c, out_c, kernel, dilation (each 1 + byte % n), ..., byte 9 % 8 == 5: stride 2.
    "stream": {
        "strided": bytes([3, 5, 4, 0, 7, 1, 0, 9, 9, 5, 0, 40]) + values(600, 15),
        "dilated": bytes([2, 4, 2, 2, 9, 2, 1, 3, 3, 0, 0, 64]) + values(600, 16),
    },
}


def main():
    for target, seeds in SEEDS.items():
        folder = os.path.join(HERE, target)
        os.makedirs(folder, exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(folder, name), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
