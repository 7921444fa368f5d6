//! The connections the server accepts, each with a [`ResetSwitch`] a handler can pull to reset it: the
//! `reset_rate` fault (see [`crate::Faults::reset_rate`]).
//!
//! axum has no way for a handler to drop its connection. So the server accepts through
//! [`ResettableListener`], whose streams ([`ResettableStream`]) carry a switch that the handler receives as
//! connect info. Once the switch is pulled, the stream sets `SO_LINGER` to zero and fails its next read or
//! write; hyper then drops the connection without answering, and the kernel sends a TCP reset. The client
//! sees what it sees when a proxy or a crashed server resets the connection: `connection reset by peer`
//! (or `connection closed before message completed`), never a status.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Resets one connection when pulled. Cloned into the connect info of every request on the connection.
#[derive(Debug, Clone, Default)]
pub(crate) struct ResetSwitch(Arc<AtomicBool>);

impl ResetSwitch {
    /// Resets the connection: nothing more is read or written on it, and it closes with a TCP reset.
    pub(crate) fn pull(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether [`ResetSwitch::pull`] was called.
    fn pulled(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// A TCP listener whose connections can be reset by their handlers.
#[derive(Debug)]
pub(crate) struct ResettableListener(pub(crate) TcpListener);

impl Listener for ResettableListener {
    type Io = ResettableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        // axum's own accept loop for TCP: it logs and retries errors such as too many open files.
        let (stream, addr) = Listener::accept(&mut self.0).await;
        (ResettableStream { stream, switch: ResetSwitch::default() }, addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

impl Connected<IncomingStream<'_, ResettableListener>> for ResetSwitch {
    fn connect_info(stream: IncomingStream<'_, ResettableListener>) -> Self {
        stream.io().switch.clone()
    }
}

/// An accepted TCP connection and its [`ResetSwitch`].
#[derive(Debug)]
pub(crate) struct ResettableStream {
    /// The connection.
    stream: TcpStream,
    /// Pulled by a handler to reset the connection.
    switch: ResetSwitch,
}

impl ResettableStream {
    /// `Some(error)` once the switch is pulled, after arming the reset: closing a socket whose linger time
    /// is zero sends a TCP reset instead of a FIN.
    fn reset(&self) -> Option<io::Error> {
        if !self.switch.pulled() {
            return None;
        }
        if let Err(e) = self.stream.set_zero_linger() {
            tracing::warn!("cannot arm a connection reset (SO_LINGER 0): {e}; the connection closes normally");
        }
        Some(io::Error::new(io::ErrorKind::ConnectionReset, "connection reset by fault injection"))
    }
}

impl AsyncRead for ResettableStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if let Some(error) = self.reset() {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResettableStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if let Some(error) = self.reset() {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(error) = self.reset() {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(error) = self.reset() {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Some(error) = self.reset() {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
