//! 64-byte aligned `f32` storage for the report and the benches (included with `#[path]`).

/// Activations and packed weights in 64-byte aligned storage, as ONNX Runtime's allocator
/// gives its tensors (a large `Vec<f32>` is only 16-byte aligned, and every 64-byte vector
/// access to it then spans two cache lines).
pub struct Aligned {
    buf: Vec<f32>,
    at: usize,
    len: usize,
}

impl Aligned {
    pub fn from(v: &[f32]) -> Self {
        let mut buf = vec![0.0; v.len() + 16];
        let at = buf.as_ptr().align_offset(64);
        buf[at..at + v.len()].copy_from_slice(v);
        Aligned {
            buf,
            at,
            len: v.len(),
        }
    }
    pub fn get(&self) -> &[f32] {
        &self.buf[self.at..self.at + self.len]
    }
    pub fn get_mut(&mut self) -> &mut [f32] {
        &mut self.buf[self.at..self.at + self.len]
    }
}
