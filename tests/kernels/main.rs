//! Every kernel against the f64 reference on every backend, forced one by one; golden
//! vectors from ONNX Runtime; misuse; dispatch. One test binary rather than one per file:
//! Miri compiles each binary again when it runs it, and elsewhere each is a link of its own.
#[path = "../common/mod.rs"]
mod common;
// The firmware's model and its host-side loader, shared with the firmware.
#[path = "../../examples/firmware/src/kws.rs"]
mod kws;
#[path = "../../examples/firmware/src/host.rs"]
mod kws_host;

mod activation;
mod attention;
mod attention_golden;
mod bytes;
mod conv;
mod conv_golden;
mod dense;
mod dispatch;
mod edge;
mod firmware_model;
mod hostile;
mod misuse;
mod recurrent;
mod recurrent_golden;
mod softmax;
