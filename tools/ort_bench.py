#!/usr/bin/env python3
"""ONNX Runtime timings of simdnn's report workloads, for a side-by-side comparison.

Each workload is a one-operator ONNX graph built here (no model files): the same shapes as
`cargo run --release --example report`, f32, batch 1, one thread (intra- and inter-op
threads 1, sequential execution, every graph optimisation on). Inputs and outputs are
bound once as OrtValues, so a timed call is `run_with_iobinding` alone: the time includes
ONNX Runtime's own per-call overhead (a few microseconds, printed as `overhead_identity`),
as a caller of its C API would pay it.

    python3 tools/ort_bench.py [--only NAME[,NAME]] [--min-time SECONDS] [--out FILE.json]

Prints one line per workload and writes {"onnxruntime": version, "results": [{"name",
"wall_us", "runs"}]} to --out. `.ci/compare` installs ONNX Runtime into a virtualenv and
runs this beside the report.
"""
import argparse
import json
import platform
import statistics
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(7)


def tensor(*shape):
    return rng.uniform(-1.0, 1.0, shape).astype(np.float32)


def graph(node, inputs, output_shape, weights=()):
    """A model of one node whose inputs are `inputs` (name -> array) and initialisers
    `weights` (name -> array), with one output `y`."""
    info = [helper.make_tensor_value_info(k, TensorProto.FLOAT, v.shape) for k, v in inputs.items()]
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, output_shape)
    inits = [numpy_helper.from_array(v, k) for k, v in weights]
    model = helper.make_model(
        helper.make_graph([node], "workload", info, [out], inits),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model.SerializeToString(), inputs


def conv(cin, cout, hw, k, stride=1, group=1):
    """NCHW convolution with bias; SAME padding for stride 1, pad 1 for stride 2 (as the
    report's explicit padding)."""
    pad = (k - 1) // 2
    out_hw = [(n + 2 * pad - k) // stride + 1 for n in hw]
    w = tensor(cout, cin // group, *([k] * len(hw)))
    node = helper.make_node(
        "Conv", ["x", "w", "b"], ["y"], kernel_shape=[k] * len(hw), strides=[stride] * len(hw),
        pads=[pad] * 2 * len(hw), group=group,
    )
    return graph(node, {"x": tensor(1, cin, *hw)}, [1, cout, *out_hw], [("w", w), ("b", tensor(cout))])


def dense(batch, out, inp):
    """y = x W^T + b with W [out][in] (PyTorch nn.Linear), as Gemm transB=1."""
    node = helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)
    weights = [("w", tensor(out, inp)), ("b", tensor(out))]
    return graph(node, {"x": tensor(batch, inp)}, [batch, out], weights)


def softmax(rows, cols):
    node = helper.make_node("Softmax", ["x"], ["y"], axis=-1)
    return graph(node, {"x": tensor(rows, cols) * 20.0}, [rows, cols])


def recurrent(op, gates, inp, hidden, steps):
    """ONNX RNN, GRU or LSTM, one direction, batch 1, biases, weights scaled by
    1/sqrt(fan-in) as the report's; the GRU with linear_before_reset = 1 (PyTorch's)."""
    extra = {"linear_before_reset": 1} if op == "GRU" else {}
    node = helper.make_node(op, ["x", "w", "r", "b"], ["y"], hidden_size=hidden, **extra)
    weights = [
        ("w", tensor(1, gates * hidden, inp) / np.float32(np.sqrt(inp))),
        ("r", tensor(1, gates * hidden, hidden) / np.float32(np.sqrt(hidden))),
        ("b", tensor(1, 2 * gates * hidden)),
    ]
    return graph(node, {"x": tensor(steps, 1, inp)}, [steps, 1, 1, hidden], weights)


def graph_nodes(nodes, inputs, output_shape, opset=17):
    """A model of several nodes ending in output `y`."""
    info = [helper.make_tensor_value_info(k, TensorProto.FLOAT, v.shape) for k, v in inputs.items()]
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, output_shape)
    model = helper.make_model(
        helper.make_graph(nodes, "workload", info, [out]),
        opset_imports=[helper.make_opsetid("", opset)],
    )
    model.ir_version = 10
    return model.SerializeToString(), inputs


def sdpa_graph(heads, q_len, kv_len, d, causal=False):
    """softmax(Q K^T / sqrt(d) + mask) V as MatMul, Mul, (Add), Softmax, MatMul; K is
    given transposed ([1, H, d, L]) so no Transpose node runs."""
    q, kt, v = tensor(1, heads, q_len, d), tensor(1, heads, d, kv_len), tensor(1, heads, kv_len, d)
    inputs = {"q": q, "kt": kt, "v": v}
    scale = numpy_helper.from_array(np.array(1.0 / np.sqrt(d), np.float32), "scale")
    nodes = [
        helper.make_node("Constant", [], ["scale"], value=scale),
        helper.make_node("MatMul", ["q", "kt"], ["s"]),
        helper.make_node("Mul", ["s", "scale"], ["ss"]),
    ]
    last = "ss"
    if causal:
        mask = np.triu(np.full((q_len, kv_len), -np.inf, np.float32), 1 + kv_len - q_len)
        nodes.append(helper.make_node("Constant", [], ["mask"], value=numpy_helper.from_array(mask, "mask")))
        nodes.append(helper.make_node("Add", ["ss", "mask"], ["sm"]))
        last = "sm"
    nodes += [helper.make_node("Softmax", [last], ["p"], axis=-1), helper.make_node("MatMul", ["p", "v"], ["y"])]
    return graph_nodes(nodes, inputs, [1, heads, q_len, d])


def sdpa_op(heads, q_len, kv_len, d, causal=False):
    """ONNX's Attention operator (opset 23), 4-D inputs [1, H, L, d]."""
    inputs = {"q": tensor(1, heads, q_len, d), "k": tensor(1, heads, kv_len, d), "v": tensor(1, heads, kv_len, d)}
    node = helper.make_node("Attention", ["q", "k", "v"], ["y"], is_causal=int(causal))
    return graph_nodes([node], inputs, [1, heads, q_len, d], opset=23)


def additive(n, d, a):
    """Additive attention pooling as a graph: MatMul (keys by W_k^T), Add (the projected
    query with its bias, an input), Tanh, MatMul (by w), Softmax over the keys, Transpose,
    MatMul (by the values = the keys)."""
    keys, wk, qp, w = tensor(n, d), tensor(d, a), tensor(1, a), tensor(a, 1)
    inputs = {"keys": keys, "qp": qp}
    const = lambda name, arr: helper.make_node("Constant", [], [name], value=numpy_helper.from_array(arr, name))
    nodes = [
        const("wk", wk),
        const("w", w),
        helper.make_node("MatMul", ["keys", "wk"], ["kp"]),
        helper.make_node("Add", ["kp", "qp"], ["pre"]),
        helper.make_node("Tanh", ["pre"], ["t"]),
        helper.make_node("MatMul", ["t", "w"], ["e"]),
        helper.make_node("Softmax", ["e"], ["p"], axis=0),
        helper.make_node("Transpose", ["p"], ["pt"]),
        helper.make_node("MatMul", ["pt", "keys"], ["y"]),
    ]
    return graph_nodes(nodes, inputs, [1, d])


def identity():
    node = helper.make_node("Identity", ["x"], ["y"])
    return graph(node, {"x": tensor(1, 16)}, [1, 16])


WORKLOADS = {
    "overhead_identity": identity,
    "conv_tiny": lambda: conv(3, 16, (32, 32), 3),
    "conv_small": lambda: conv(16, 32, (16, 16), 3),
    "conv_resnet": lambda: conv(64, 64, (56, 56), 3),
    "conv_pw": lambda: conv(64, 128, (28, 28), 1),
    "conv_dw": lambda: conv(128, 128, (28, 28), 3, group=128),
    "conv_s2": lambda: conv(32, 64, (56, 56), 3, stride=2),
    "conv1d_kws": lambda: conv(1, 16, (16000,), 9),
    "dense_gemv_256x256": lambda: dense(1, 256, 256),
    "dense_gemm_64x256x256": lambda: dense(64, 256, 256),
    "softmax_8x1024": lambda: softmax(8, 1024),
    "rnn_64x128": lambda: recurrent("RNN", 1, 64, 128, 100),
    "gru_64x128": lambda: recurrent("GRU", 3, 64, 128, 100),
    "lstm_128x256": lambda: recurrent("LSTM", 4, 128, 256, 100),
    # One step: a sequence of one.
    "gru_64x128_step": lambda: recurrent("GRU", 3, 64, 128, 1),
    "lstm_128x256_step": lambda: recurrent("LSTM", 4, 128, 256, 1),
    # Attention: the MatMul/Softmax/MatMul graph and ONNX's Attention operator; .ci/compare
    # counts the faster of the two (the `:graph` and `:op` variants of a name).
    "sdpa_256:graph": lambda: sdpa_graph(8, 256, 256, 64),
    "sdpa_256:op": lambda: sdpa_op(8, 256, 256, 64),
    "sdpa_256_causal:graph": lambda: sdpa_graph(8, 256, 256, 64, causal=True),
    "sdpa_256_causal:op": lambda: sdpa_op(8, 256, 256, 64, causal=True),
    "sdpa_1024:graph": lambda: sdpa_graph(4, 1024, 1024, 64),
    "sdpa_1024:op": lambda: sdpa_op(4, 1024, 1024, 64),
    "decode_1024:graph": lambda: sdpa_graph(8, 1, 1024, 64),
    "decode_1024:op": lambda: sdpa_op(8, 1, 1024, 64),
    "additive_128": lambda: additive(128, 64, 64),
}


def session(model):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def time_workload(make, min_time):
    model, inputs = make()
    sess = session(model)
    expected = sess.run(None, inputs)
    binding = sess.io_binding()
    held = []  # the bound OrtValues must outlive the binding
    for name, value in inputs.items():
        held.append(ort.OrtValue.ortvalue_from_numpy(value))
        binding.bind_ortvalue_input(name, held[-1])
    for out, value in zip(sess.get_outputs(), expected):
        held.append(ort.OrtValue.ortvalue_from_shape_and_type(value.shape, value.dtype))
        binding.bind_ortvalue_output(out.name, held[-1])
    # Warm up for a tenth of a second, then take as many runs as fit in min_time.
    start, warm = time.perf_counter(), 0
    while time.perf_counter() - start < 0.1 or warm < 5:
        sess.run_with_iobinding(binding)
        warm += 1
    per_run = (time.perf_counter() - start) / warm
    runs = max(20, min(20000, int(min_time / per_run)))
    times = []
    for _ in range(runs):
        t = time.perf_counter_ns()
        sess.run_with_iobinding(binding)
        times.append(time.perf_counter_ns() - t)
    return statistics.median(times) / 1e3, runs


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", help="comma-separated workload names")
    parser.add_argument("--min-time", type=float, default=1.0, help="seconds per workload")
    parser.add_argument("--out", help="JSON file for the results")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(WORKLOADS)
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workloads {unknown}; known: {', '.join(WORKLOADS)}")
    print(f"ONNX Runtime {ort.__version__}, one thread, {platform.processor() or platform.machine()}")
    results = []
    for name in names:
        us, runs = time_workload(WORKLOADS[name], args.min_time)
        print(f"{name:<24} {us:10.2f} us  ({runs} runs)")
        results.append({"name": name, "wall_us": us, "runs": runs})
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"onnxruntime": ort.__version__, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
