//! A pool of reusable frame buffers shared between threads.

use std::fmt;
use std::ops::{Deref, DerefMut};

use crate::encode::FrameBuffer;
use crate::sync::{Arc, Mutex};

struct Inner {
    idle: Mutex<Vec<FrameBuffer>>,
    max_idle: usize,
    initial_capacity: usize,
}

/// A pool of [`FrameBuffer`]s, cheap to clone and shared between threads.
///
/// User threads [`take`](Self::take) a buffer, encode frames into it and pass
/// it to the I/O thread; dropping the [`PooledBuffer`] after the write clears
/// it and returns it to the pool. Up to `max_idle` buffers are kept; once
/// warm, taking and returning allocates nothing.
#[derive(Clone)]
pub struct BufferPool {
    inner: Arc<Inner>,
}

impl fmt::Debug for BufferPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufferPool")
            .field("idle", &self.idle())
            .field("max_idle", &self.inner.max_idle)
            .finish()
    }
}

impl BufferPool {
    /// A pool keeping at most `max_idle` idle buffers, each created with
    /// room for `initial_capacity` bytes.
    pub fn new(max_idle: usize, initial_capacity: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                idle: Mutex::new(Vec::with_capacity(max_idle)),
                max_idle,
                initial_capacity,
            }),
        }
    }

    /// Takes an idle buffer, or creates one if none is idle.
    pub fn take(&self) -> PooledBuffer {
        let reused = self.inner.idle.lock().pop();
        let buf = reused.unwrap_or_else(|| FrameBuffer::with_capacity(self.inner.initial_capacity));
        PooledBuffer {
            buf,
            pool: self.clone(),
        }
    }

    /// The number of idle buffers.
    pub fn idle(&self) -> usize {
        self.inner.idle.lock().len()
    }

    /// The most idle buffers kept.
    pub fn max_idle(&self) -> usize {
        self.inner.max_idle
    }

    fn give_back(&self, mut buf: FrameBuffer) {
        if buf.capacity() == 0 {
            return;
        }
        buf.clear();
        let mut idle = self.inner.idle.lock();
        if idle.len() < self.inner.max_idle {
            idle.push(buf);
        }
        // Otherwise `buf` is dropped after the lock is released.
        drop(idle);
    }
}

/// A [`FrameBuffer`] on loan from a [`BufferPool`]; returns on drop.
pub struct PooledBuffer {
    buf: FrameBuffer,
    pool: BufferPool,
}

impl PooledBuffer {
    /// Keeps the buffer instead of returning it to the pool.
    pub fn detach(mut self) -> FrameBuffer {
        std::mem::take(&mut self.buf)
    }
}

impl fmt::Debug for PooledBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PooledBuffer").field(&self.buf).finish()
    }
}

impl Deref for PooledBuffer {
    type Target = FrameBuffer;

    fn deref(&self) -> &FrameBuffer {
        &self.buf
    }
}

impl DerefMut for PooledBuffer {
    fn deref_mut(&mut self) -> &mut FrameBuffer {
        &mut self.buf
    }
}

impl Drop for PooledBuffer {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        self.pool.give_back(buf);
    }
}
