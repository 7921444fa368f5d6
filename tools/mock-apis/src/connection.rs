//! Connections a handler can reset (the `reset_rate` fault). axum gives a handler no way to drop its
//! connection, so the server accepts through [`ResettableListener`], whose streams carry a [`ResetSwitch`]
//! the handler gets as connect info. Once pulled, the stream sets `SO_LINGER` to zero and fails its next
//! read or write: hyper drops the connection unanswered and the kernel sends a TCP reset, as when a proxy
//! or a crashed server resets it; the client never sees a status.

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
}

/// A TCP listener whose connections can be reset by their handlers.
#[derive(Debug)]
pub(crate) struct ResettableListener(pub(crate) TcpListener);

impl Listener for ResettableListener {
    type Io = ResettableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
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
    /// Runs `io` on the connection, or fails once the switch is pulled, after arming the reset: closing a
    /// socket whose linger time is zero sends a TCP reset instead of a FIN.
    fn io<T>(
        mut self: Pin<&mut Self>,
        io: impl FnOnce(Pin<&mut TcpStream>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if !self.switch.0.load(Ordering::Acquire) {
            return io(Pin::new(&mut self.stream));
        }
        if let Err(e) = self.stream.set_zero_linger() {
            tracing::warn!("cannot arm a connection reset (SO_LINGER 0): {e}; the connection closes normally");
        }
        Poll::Ready(Err(io::Error::new(io::ErrorKind::ConnectionReset, "connection reset by fault injection")))
    }
}

impl AsyncRead for ResettableStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.io(|stream| stream.poll_read(cx, buf))
    }
}

impl AsyncWrite for ResettableStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.io(|stream| stream.poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io(|stream| stream.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io(|stream| stream.poll_shutdown(cx))
    }
}
