//! Streaming 1-D convolution: frames in chunks, state kept by the caller.

use super::ConvCall;
use super::pack::PackedConv2d;
use super::shape::{Conv2dShape, Padding};
use crate::ops::Activation;

use crate::error::{check_len, checked_mul};

use crate::{Engine, Error};

impl Conv2dShape {
    /// Frames of history a streaming 1-D convolution keeps: `(kernel_w - 1) * dilation_w`.
    pub const fn stream_history(&self) -> usize {
        self.kernel_w
            .saturating_sub(1)
            .saturating_mul(self.dilation_w)
    }

    /// Length of the caller-owned state of [`Engine::conv1d_stream`]:
    /// [`Conv2dShape::stream_history`] frames of `in_c` channels.
    ///
    /// ```
    /// use simdnn::Conv2dShape;
    /// // A stream has no fixed length: the shape's length (0 here) is not used.
    /// let kws = Conv2dShape::conv1d(0, 1, 16, 9);
    /// assert_eq!(kws.stream_state_len(), 8);
    /// ```
    pub const fn stream_state_len(&self) -> usize {
        self.stream_history().saturating_mul(self.in_c)
    }

    /// Output frames [`Engine::conv1d_stream`] gives for a chunk of `frames` frames (a
    /// whole number of strides): `frames / stride_w`.
    ///
    /// ```
    /// use simdnn::Conv2dShape;
    /// let front_end = Conv2dShape::conv1d(0, 10, 16, 3).with_stride(1, 2);
    /// assert_eq!(front_end.stream_outputs(8), 4);
    /// ```
    pub const fn stream_outputs(&self, frames: usize) -> usize {
        match frames.checked_div(self.stride_w) {
            Some(n) => n,
            None => 0,
        }
    }

    /// Length of the scratch [`Engine::conv1d_stream`] needs to process `frames` frames at
    /// once: the history plus the new frames.
    pub const fn stream_scratch_len(&self, frames: usize) -> usize {
        self.stream_history()
            .saturating_add(frames)
            .saturating_mul(self.in_c)
    }
}

impl Engine {
    /// Streaming 1-D convolution: feed frames (NWC, `in_c` channels each) in chunks and
    /// get, chunk by chunk, exactly the outputs of one offline call over the whole stream
    /// with causal padding (`Padding::Explicit { left: (k - 1) * dilation, .. }`) and the
    /// shape's stride. With stride 1 a chunk has any size; with stride `s` (a front end
    /// that downsamples) a chunk is a whole number of strides and gives one output frame per
    /// stride, the window ending at the chunk's frames `0, s, 2s, ...`
    /// ([`Conv2dShape::stream_outputs`]). `state` keeps the last
    /// [`Conv2dShape::stream_history`] frames between calls (zeros at the start);
    /// `scratch` holds history plus chunk ([`Conv2dShape::stream_scratch_len`]). The
    /// shape's `in_w` and padding are ignored.
    ///
    /// ```
    /// use simdnn::{Activation, Conv2dShape, Engine, PackedConv2d, WeightLayout};
    /// // Length 0: a stream's length is not part of its shape (chunks have any size).
    /// let shape = Conv2dShape::conv1d(0, 1, 1, 3); // y[t] = x[t-2] + 2 x[t-1] + 3 x[t]
    /// let mut storage = vec![0.0; shape.packed_weights_len()];
    /// let w = PackedConv2d::pack(&shape, WeightLayout::Ohwi, &[1.0, 2.0, 3.0], &mut storage)?;
    /// let mut state = [0.0; 2];
    /// let mut scratch = [0.0; 2 + 2];
    /// let (nn, mut y) = (Engine::new(), [0.0; 2]);
    /// nn.conv1d_stream(&shape, &w, None, Activation::Identity, &mut state, &[1.0, 0.0], &mut scratch, &mut y)?;
    /// assert_eq!(y, [3.0, 2.0]);
    /// nn.conv1d_stream(&shape, &w, None, Activation::Identity, &mut state, &[0.0, 0.0], &mut scratch, &mut y)?;
    /// assert_eq!(y, [1.0, 0.0]);
    /// # Ok::<(), simdnn::Error>(())
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn conv1d_stream(
        &self,
        shape: &Conv2dShape,
        weights: &PackedConv2d<'_>,
        bias: Option<&[f32]>,
        act: Activation,
        state: &mut [f32],
        x: &[f32],
        scratch: &mut [f32],
        y: &mut [f32],
    ) -> Result<(), Error> {
        if shape.kernel_h != 1 || shape.stride_h != 1 {
            return Err(Error::InvalidShape {
                what: "streaming conv1d needs kernel_h = 1 and stride_h = 1",
            });
        }
        if shape.in_c == 0 {
            return Err(Error::ZeroDimension { arg: "in_c" });
        }
        if shape.stride_w == 0 {
            return Err(Error::ZeroDimension { arg: "stride_w" });
        }
        // A chunk is whole frames, and with a stride whole strides of them.
        let per_chunk = checked_mul(shape.in_c, shape.stride_w, "stride length")?;
        if !x.len().is_multiple_of(per_chunk) {
            return Err(Error::NotAMultiple {
                arg: "x",
                len: x.len(),
                of: per_chunk,
            });
        }
        let frames = x.len() / shape.in_c;
        let history = shape.stream_history();
        let total = history.checked_add(frames).ok_or(Error::SizeOverflow {
            what: "stream length",
        })?;
        // Over history + chunk, VALID gives exactly one output per stride of new frames.
        let offline = Conv2dShape {
            batch: 1,
            in_h: 1,
            in_w: if frames == 0 { 0 } else { total },
            padding: Padding::Valid,
            ..*shape
        };
        let state_len = checked_mul(history, shape.in_c, "state length")?;
        check_len("state", state.len(), state_len)?;
        let scratch_len = checked_mul(total, shape.in_c, "scratch length")?;
        check_len("scratch", scratch.len(), scratch_len)?;
        let outputs = shape.stream_outputs(frames);
        check_len("y", y.len(), checked_mul(outputs, shape.out_c, "y length")?)?;
        // Everything the convolution checks, before `scratch` is written.
        let x_len = if frames == 0 { 0 } else { scratch_len };
        let call = ConvCall::checked(&offline, weights, bias, act, x_len, y.len())?;
        if frames == 0 {
            return Ok(());
        }
        scratch[..state_len].copy_from_slice(state);
        scratch[state_len..].copy_from_slice(x);
        call.run(self, scratch, y);
        state.copy_from_slice(&scratch[scratch.len() - state_len..]);
        Ok(())
    }
}
