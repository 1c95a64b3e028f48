//! Transports behind one object-safe face, so one driver serves connections
//! of any transport, picked by URI at run time or supplied by the user.

use std::task::Waker;

use dndm_codec::{Frame, FrameBuffer};
use dndm_transport::{AcceptError, Address, Connection, Listener, RecvError, SendError};

/// A [`Connection`] of any transport.
pub(crate) trait DynConnection: Send {
    fn peer_addr(&self) -> &Address;
    fn try_send(&self, frames: &FrameBuffer) -> Result<(), SendError>;
    fn try_recv_dyn(
        &mut self,
        max_frames: usize,
        on_frame: &mut dyn FnMut(Frame<'_>),
    ) -> Result<usize, RecvError>;
    fn set_waker(&mut self, waker: Option<Waker>);
    fn close(&mut self);
}

impl<C: Connection + Send> DynConnection for C {
    fn peer_addr(&self) -> &Address {
        Connection::peer_addr(self)
    }
    fn try_send(&self, frames: &FrameBuffer) -> Result<(), SendError> {
        Connection::try_send(self, frames)
    }
    fn try_recv_dyn(
        &mut self,
        max_frames: usize,
        on_frame: &mut dyn FnMut(Frame<'_>),
    ) -> Result<usize, RecvError> {
        Connection::try_recv(self, max_frames, on_frame)
    }
    fn set_waker(&mut self, waker: Option<Waker>) {
        Connection::set_waker(self, waker);
    }
    fn close(&mut self) {
        Connection::close(self);
    }
}

/// A [`Listener`] of any transport.
pub(crate) trait DynListener: Send {
    fn local_addr(&self) -> &Address;
    fn try_accept_dyn(&mut self) -> Result<Option<Box<dyn DynConnection>>, AcceptError>;
    fn set_waker(&mut self, waker: Option<Waker>);
}

impl<L> DynListener for L
where
    L: Listener + Send,
    L::Connection: Send + 'static,
{
    fn local_addr(&self) -> &Address {
        Listener::local_addr(self)
    }
    fn try_accept_dyn(&mut self) -> Result<Option<Box<dyn DynConnection>>, AcceptError> {
        Ok(Listener::try_accept(self)?.map(|c| Box::new(c) as Box<dyn DynConnection>))
    }
    fn set_waker(&mut self, waker: Option<Waker>) {
        Listener::set_waker(self, waker);
    }
}
