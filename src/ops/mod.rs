//! Slice-level building blocks shared by the operator families: lane-wise maps
//! ([`VecOp`], [`map`]), the activation epilogues ([`Activation`], [`with_epilogue!`],
//! [`finish`]) and the row reductions of softmax.

mod epilogue;
mod map;
mod reduce;

pub use epilogue::Activation;
pub(crate) use epilogue::{
    AnyEpilogue, Epilogue, activate_in_place_kernel, bias_only, finish, with_epilogue,
};
pub(crate) use map::{Relu, Scale, SubSub, Unchanged, VecOp, add_scaled, map, map_in_place};
pub(crate) use reduce::{add_mask_and_max, exp_sum, online_softmax_block};
