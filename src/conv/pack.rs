//! Weight layouts (OHWI, HWIO, OIHW), their conversion, and packing into the kernels'
//! blocked layouts, at run time (`PackedConv2d`) or at compile time (`pack_conv2d`).

use super::shape::{Conv2dShape, Geometry};
use super::winograd;
use crate::Error;
use crate::error::check_len;
use crate::gemm::PANEL;
use core::num::NonZeroUsize;

/// The memory order of convolution weights as a framework stores them. `I` is the input
/// channels per group (`in_c / groups`).
///
/// Depthwise weights of TFLite (`[1][KH][KW][C*m]`) and Keras (`[KH][KW][C][m]`) have the
/// same memory order as `Hwio` with `I = 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightLayout {
    /// `[out_c][KH][KW][I]`: TFLite, CMSIS-NN.
    Ohwi,
    /// `[KH][KW][I][out_c]`: TensorFlow / Keras.
    Hwio,
    /// `[out_c][I][KH][KW]`: PyTorch, ONNX.
    Oihw,
}

impl WeightLayout {
    /// Index of `W[o, ky, kx, c]` in this layout.
    #[inline]
    pub(super) const fn index(
        self,
        g: &Geometry,
        o: usize,
        ky: usize,
        kx: usize,
        c: usize,
    ) -> usize {
        let (kh, kw, ci) = (g.kernel_h, g.kernel_w, g.in_per_group);
        match self {
            WeightLayout::Ohwi => ((o * kh + ky) * kw + kx) * ci + c,
            WeightLayout::Hwio => ((ky * kw + kx) * ci + c) * g.out_c + o,
            WeightLayout::Oihw => ((o * ci + c) * kh + ky) * kw + kx,
        }
    }
}

/// Convolution weights packed for [`Engine::conv2d`](crate::Engine::conv2d), borrowed from caller-owned storage
/// of [`Conv2dShape::packed_weights_len`] floats. The layout depends on the kernel, the
/// channels and the groups, and for Winograd shapes ([`Conv2dShape::uses_winograd`]) also
/// on stride and dilation: a call with a shape the weights were not packed for is an
/// error (the image size and padding may change from call to call). As with
/// [`PackedDense`](crate::PackedDense), 64-byte aligned storage avoids loads that span two
/// cache lines on AVX-512.
///
/// ```
/// use simdnn::{Conv2dShape, PackedConv2d, WeightLayout};
/// let shape = Conv2dShape::new(8, 8, 2, 4, 3, 3);
/// let w = vec![0.5; shape.weights_len()?];
/// let mut storage = vec![0.0; shape.packed_weights_len()];
/// let packed = PackedConv2d::pack(&shape, WeightLayout::Oihw, &w, &mut storage)?;
/// assert_eq!(packed.as_slice().len(), 32 * 3 * 3 * 2);
/// # Ok::<(), simdnn::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct PackedConv2d<'a> {
    pub(super) data: &'a [f32],
    /// The kernel-related part of the shape it was packed for (the rest may vary per call).
    pub(super) key: KernelKey,
}

/// What packed weights depend on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct KernelKey {
    in_c: usize,
    out_c: usize,
    kernel_h: usize,
    kernel_w: usize,
    groups: usize,
    /// Winograd-transformed (which also depends on stride and dilation).
    winograd: bool,
}

impl KernelKey {
    pub(super) fn of(s: &Conv2dShape) -> Self {
        KernelKey {
            in_c: s.in_c,
            out_c: s.out_c,
            kernel_h: s.kernel_h,
            kernel_w: s.kernel_w,
            groups: s.groups,
            winograd: s.uses_winograd(),
        }
    }
}

impl<'a> PackedConv2d<'a> {
    /// Packs weights given in `layout` for `shape`'s kernel into `storage`.
    pub fn pack(
        shape: &Conv2dShape,
        layout: WeightLayout,
        w: &[f32],
        storage: &'a mut [f32],
    ) -> Result<Self, Error> {
        let g = shape.kernel_geometry()?;
        check_len("w", w.len(), g.weights_len)?;
        check_len("storage", storage.len(), shape.packed_weights_len())?;
        // (The lengths are checked above; reads and writes out of range, which they exclude,
        // are skipped: no panic path in a firmware's packing.)
        let at = |i: usize| w.get(i).copied().unwrap_or_default();
        if g.depthwise {
            // [KH][KW][out_c]
            for ky in 0..g.kernel_h {
                for kx in 0..g.kernel_w {
                    for o in 0..g.out_c {
                        if let Some(d) = storage.get_mut((ky * g.kernel_w + kx) * g.out_c + o) {
                            *d = at(layout.index(&g, o, ky, kx, 0));
                        }
                    }
                }
            }
        } else if shape.uses_winograd() {
            // Per position, panels of PANEL outputs, `in_c` rows each, zero-padded.
            let panels = g.out_c.div_ceil(PANEL);
            storage.fill(0.0);
            for o in 0..g.out_c {
                for c in 0..g.in_c {
                    let kernel: [[f32; 3]; 3] = core::array::from_fn(|ky| {
                        core::array::from_fn(|kx| at(layout.index(&g, o, ky, kx, c)))
                    });
                    let u = winograd::transform_kernel(kernel);
                    for (p, &up) in u.as_flattened().iter().enumerate() {
                        if let Some(d) =
                            storage.get_mut(winograd::packed_index(g.in_c, panels, p, o, c))
                        {
                            *d = up;
                        }
                    }
                }
            }
        } else {
            // Per group, panels of PANEL outputs, k = (ky, kx, c) major, zero-padded.
            let k = g.k();
            let group_len = g.out_per_group.div_ceil(PANEL) * PANEL * k;
            let (Some(panel_len), Some(in_per_group), Some(kernel_w), Some(group_len)) = (
                NonZeroUsize::new(PANEL * k),
                NonZeroUsize::new(g.in_per_group),
                NonZeroUsize::new(g.kernel_w),
                NonZeroUsize::new(group_len),
            ) else {
                // Nothing to pack (an empty kernel or no outputs per group).
                return Ok(PackedConv2d {
                    data: storage,
                    key: KernelKey::of(shape),
                });
            };
            for (grp, dst) in storage
                .chunks_exact_mut(group_len.get())
                .enumerate()
                .take(g.groups)
            {
                for (i, d) in dst.iter_mut().enumerate() {
                    let (panel, rest) = (i / panel_len, i % panel_len);
                    let (kk, j) = (rest / PANEL, rest % PANEL);
                    let o = panel * PANEL + j;
                    let (tap, c) = (kk / in_per_group, kk % in_per_group);
                    let (ky, kx) = (tap / kernel_w, tap % kernel_w);
                    *d = if o < g.out_per_group {
                        at(layout.index(&g, grp * g.out_per_group + o, ky, kx, c))
                    } else {
                        0.0
                    };
                }
            }
        }
        Ok(PackedConv2d {
            data: storage,
            key: KernelKey::of(shape),
        })
    }

    /// Wraps weights packed earlier for `shape` (e.g. stored and read back with `bytemuck`).
    pub fn from_packed(shape: &Conv2dShape, data: &'a [f32]) -> Result<Self, Error> {
        shape.kernel_geometry()?;
        check_len("data", data.len(), shape.packed_weights_len())?;
        Ok(PackedConv2d {
            data,
            key: KernelKey::of(shape),
        })
    }

    /// [`PackedConv2d::from_packed`] over a blob of little-endian `f32` bytes, read in
    /// place: an error if it is misaligned or not exactly the packed length.
    ///
    /// ```
    /// use simdnn::{AlignedBytes, Conv2dShape, PackedConv2d};
    /// let shape = Conv2dShape::conv1d(0, 1, 4, 3);
    /// static BLOB: AlignedBytes<4096> = AlignedBytes([0; 4096]);
    /// let bytes = &BLOB.0[..4 * shape.packed_weights_len()];
    /// assert!(PackedConv2d::from_bytes(&shape, bytes).is_ok());
    /// assert!(PackedConv2d::from_bytes(&shape, &bytes[2..]).is_err());
    /// ```
    #[cfg(target_endian = "little")]
    pub fn from_bytes(shape: &Conv2dShape, bytes: &'a [u8]) -> Result<Self, Error> {
        crate::bytes::packed_from_bytes(bytes, |data| Self::from_packed(shape, data))
    }

    /// The packed data.
    pub fn as_slice(&self) -> &'a [f32] {
        self.data
    }
}

/// Rewrites weights of `shape` from one layout to another.
///
/// ```
/// use simdnn::{Conv2dShape, WeightLayout, convert_weights};
/// let shape = Conv2dShape::new(4, 4, 2, 3, 1, 2);
/// let oihw: Vec<f32> = (0..12).map(|i| i as f32).collect();
/// let mut hwio = vec![0.0; 12];
/// convert_weights(&shape, WeightLayout::Oihw, &oihw, WeightLayout::Hwio, &mut hwio)?;
/// // W[o=1, c=0, ky=0, kx=1] is at OIHW 5 and at HWIO (kx=1, c=0, o=1) = 1*2*3 + 0*3 + 1 = 7.
/// assert_eq!(hwio[7], 5.0);
/// # Ok::<(), simdnn::Error>(())
/// ```
pub fn convert_weights(
    shape: &Conv2dShape,
    from: WeightLayout,
    src: &[f32],
    to: WeightLayout,
    dst: &mut [f32],
) -> Result<(), Error> {
    let g = shape.kernel_geometry()?;
    check_len("src", src.len(), g.weights_len)?;
    check_len("dst", dst.len(), g.weights_len)?;
    for o in 0..g.out_c {
        for ky in 0..g.kernel_h {
            for kx in 0..g.kernel_w {
                for c in 0..g.in_per_group {
                    dst[to.index(&g, o, ky, kx, c)] = src[from.index(&g, o, ky, kx, c)];
                }
            }
        }
    }
    Ok(())
}

/// Packs fixed-size OHWI weights (`[CO][KH][KW][CI]`, TFLite order, one group) for
/// [`Conv2d`](crate::Conv2d) at compile time. `P` must be `Conv2d::<CI, CO, KH, KW, P>::PACKED_LEN`.
///
/// ```
/// use simdnn::{Conv2d, pack_conv2d};
/// const W: [[[[f32; 3]; 3]; 3]; 8] = [[[[0.1; 3]; 3]; 3]; 8];
/// static PACKED: [f32; Conv2d::<3, 8, 3, 3, 0>::PACKED_LEN] = pack_conv2d(&W);
/// assert_eq!(PACKED.len(), 32 * 27);
/// ```
pub const fn pack_conv2d<
    const CI: usize,
    const CO: usize,
    const KH: usize,
    const KW: usize,
    const P: usize,
>(
    w: &[[[[f32; CI]; KW]; KH]; CO],
) -> [f32; P] {
    const {
        assert!(
            P == Conv2dShape::new(0, 0, CI, CO, KH, KW).packed_weights_len(),
            "wrong packed length P: write the array type as \
             [f32; Conv2d::<CI, CO, KH, KW, 0>::PACKED_LEN] (see `Conv2d`)"
        )
    };
    let mut dst = [0.0; P];
    if Conv2dShape::new(0, 0, CI, CO, KH, KW).uses_winograd() {
        let panels = CO.div_ceil(PANEL);
        let mut o = 0;
        while o < CO {
            let mut c = 0;
            while c < CI {
                let mut kernel = [[0.0; 3]; 3];
                let mut t = 0;
                while t < 9 {
                    kernel[t / 3][t % 3] = w[o][t / 3 % KH][t % 3 % KW][c];
                    t += 1;
                }
                let u = winograd::transform_kernel(kernel);
                let mut p = 0;
                while p < winograd::POSITIONS {
                    dst[winograd::packed_index(CI, panels, p, o, c)] = u[p / 4][p % 4];
                    p += 1;
                }
                c += 1;
            }
            o += 1;
        }
        return dst;
    }
    let k = KH * KW * CI;
    let mut i = 0;
    while i < P {
        let (panel, rest) = (i / (PANEL * k), i % (PANEL * k));
        let (kk, j) = (rest / PANEL, rest % PANEL);
        let o = panel * PANEL + j;
        let (tap, c) = (kk / CI, kk % CI);
        if o < CO {
            dst[i] = w[o][tap / KW][tap % KW][c];
        }
        i += 1;
    }
    dst
}
