//! Standard input and output as the stdio MCP transport, driven by the I/O reactor.
//!
//! tokio's `Stdin` and `Stdout` run every read and write on the blocking thread pool, so each
//! message crosses threads twice more than it has to. MCP clients start a stdio server with
//! pipes (Rust and Python clients) or with a socket pair (Node-based clients: libuv makes child
//! stdio out of `socketpair`). Pipes go through rmcp's `stdio_pipes`, which reopens them through
//! `/proc/self/fd` so that `O_NONBLOCK` stays on its own open file description. Sockets cannot be
//! reopened: they are switched to non-blocking and switched back when the transport is dropped,
//! so a parent that shares the descriptor gets it back as it gave it. Anything else (a terminal,
//! a file) keeps tokio's blocking handles.
//!
//! This is not a framing layer: rmcp reads and writes the JSON-RPC lines over these handles.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;
use std::pin::Pin;
use std::task::{Context, Poll};

use rmcp::transport::io::{StdioReader, StdioWriter};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::UnixStream;

/// The process's standard input and output as an rmcp transport.
///
/// Must be called inside a tokio runtime with I/O enabled (the reactor registers the streams).
pub fn transport() -> (Input, Output) {
    let stdin = io::stdin();
    let stdout = io::stdout();
    match socket_pair(stdin.as_fd(), stdout.as_fd()) {
        Ok(Some((input, output))) => {
            tracing::debug!("stdio transport: sockets, non-blocking");
            return (Input::Socket(input), Output::Socket(output));
        }
        Ok(None) => {}
        Err(e) => tracing::debug!(error = %e, "stdio transport: could not use the sockets directly"),
    }
    let (reader, writer) = rmcp::transport::io::stdio_pipes();
    (Input::Rmcp(reader), Output::Rmcp(writer))
}

/// Both descriptors as non-blocking sockets, or `None` when either is not a socket.
fn socket_pair(input: BorrowedFd<'_>, output: BorrowedFd<'_>) -> io::Result<Option<(Socket, Socket)>> {
    if !is_socket(input)? || !is_socket(output)? {
        return Ok(None);
    }
    Ok(Some((Socket::new(input)?, Socket::new(output)?)))
}

fn is_socket(fd: BorrowedFd<'_>) -> io::Result<bool> {
    let file = File::from(fd.try_clone_to_owned()?);
    Ok(file.metadata()?.file_type().is_socket())
}

/// A socket descriptor registered with the reactor; blocking again once dropped.
#[derive(Debug)]
pub struct Socket {
    stream: UnixStream,
    /// A second descriptor of the same open file description: `O_NONBLOCK` belongs to the
    /// description, so clearing it here restores what the parent handed over.
    restore: std::os::unix::net::UnixStream,
}

impl Socket {
    fn new(fd: BorrowedFd<'_>) -> io::Result<Self> {
        let owned: OwnedFd = fd.try_clone_to_owned()?;
        let restore = std::os::unix::net::UnixStream::from(owned.try_clone()?);
        let std_stream = std::os::unix::net::UnixStream::from(owned);
        std_stream.set_nonblocking(true)?;
        match UnixStream::from_std(std_stream) {
            Ok(stream) => Ok(Self { stream, restore }),
            Err(e) => {
                let _ = restore.set_nonblocking(false);
                Err(e)
            }
        }
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        if let Err(e) = self.restore.set_nonblocking(false) {
            tracing::debug!(error = %e, "stdio transport: could not make the socket blocking again");
        }
    }
}

/// Standard input, as rmcp reads it.
#[derive(Debug)]
pub enum Input {
    Rmcp(StdioReader),
    Socket(Socket),
}

/// Standard output, as rmcp writes it.
#[derive(Debug)]
pub enum Output {
    Rmcp(StdioWriter),
    Socket(Socket),
}

impl AsyncRead for Input {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Input::Rmcp(reader) => Pin::new(reader).poll_read(cx, buf),
            Input::Socket(socket) => Pin::new(&mut socket.stream).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Output {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Output::Rmcp(writer) => Pin::new(writer).poll_write(cx, buf),
            Output::Socket(socket) => Pin::new(&mut socket.stream).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Output::Rmcp(writer) => Pin::new(writer).poll_flush(cx),
            Output::Socket(socket) => Pin::new(&mut socket.stream).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Output::Rmcp(writer) => Pin::new(writer).poll_shutdown(cx),
            Output::Socket(socket) => Pin::new(&mut socket.stream).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::fd::AsRawFd;

    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    /// Whether the open file description behind `fd` has `O_NONBLOCK`, from the `flags:` line
    /// (octal) of `/proc/self/fdinfo`.
    fn is_nonblocking(fd: &impl AsRawFd) -> bool {
        const O_NONBLOCK: u32 = 0o4000;
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).unwrap();
        let flags = info
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .expect("a flags line");
        u32::from_str_radix(flags.trim(), 8).unwrap() & O_NONBLOCK != 0
    }

    fn async_stream(stream: std::os::unix::net::UnixStream) -> UnixStream {
        stream.set_nonblocking(true).unwrap();
        UnixStream::from_std(stream).unwrap()
    }

    #[tokio::test]
    async fn sockets_are_driven_by_the_reactor_and_handed_back_blocking() {
        let (server_in, client_in) = std::os::unix::net::UnixStream::pair().unwrap();
        let (server_out, client_out) = std::os::unix::net::UnixStream::pair().unwrap();
        assert!(!is_nonblocking(&server_in) && !is_nonblocking(&server_out));
        let (input, output) = socket_pair(server_in.as_fd(), server_out.as_fd())
            .unwrap()
            .expect("both are sockets");
        assert!(is_nonblocking(&server_in) && is_nonblocking(&server_out));
        let (mut input, mut output) = (Input::Socket(input), Output::Socket(output));

        let mut client_in = async_stream(client_in);
        client_in.write_all(b"{\"jsonrpc\":\"2.0\"}\n").await.unwrap();
        let mut line = String::new();
        BufReader::new(&mut input).read_line(&mut line).await.unwrap();
        assert_eq!(line, "{\"jsonrpc\":\"2.0\"}\n");

        output.write_all(b"reply\n").await.unwrap();
        output.flush().await.unwrap();
        let mut reply = String::new();
        BufReader::new(async_stream(client_out))
            .read_line(&mut reply)
            .await
            .unwrap();
        assert_eq!(reply, "reply\n");

        drop((input, output));
        assert!(!is_nonblocking(&server_in), "stdin is handed back blocking");
        assert!(!is_nonblocking(&server_out), "stdout is handed back blocking");
    }

    #[test]
    fn pipes_and_files_are_not_sockets() {
        let file = tempfile::tempfile().unwrap();
        let (pipe_read, _pipe_write) = std::io::pipe().unwrap();
        assert!(!is_socket(file.as_fd()).unwrap());
        assert!(!is_socket(pipe_read.as_fd()).unwrap());
        assert!(socket_pair(pipe_read.as_fd(), file.as_fd()).unwrap().is_none());
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        assert!(is_socket(a.as_fd()).unwrap());
        assert!(
            socket_pair(a.as_fd(), file.as_fd()).unwrap().is_none(),
            "both must be sockets"
        );
    }
}
