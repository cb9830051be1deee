//! A TCP proxy on 127.0.0.1 that a test can cut and restore, to make a service unreachable (every
//! connection refused, every open one reset) and then reachable again on the same address, while
//! the service itself keeps its state. Used between the invoker and CouchDB, and between every
//! Kafka client and the broker (Tansu advertises the proxy's address, so that clients reconnect
//! through it after reading the cluster metadata).

#![allow(
    dead_code,
    reason = "each test crate uses a different part of the harness"
)]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Mutex, PoisonError};

use tokio::net::{TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;

// The one port picker of the test support, included here too so that this file stands alone; the
// copies share their reservations machine-wide (see ports.rs).
#[allow(
    clippy::duplicate_mod,
    reason = "one picker, included by each support file that starts a server"
)]
#[path = "../../executor/tests/support/ports.rs"]
mod ports;

/// A cuttable TCP proxy. Dropping it closes the listener and every connection.
#[derive(Debug)]
pub struct Proxy {
    address: SocketAddr,
    /// Where connections go.
    target: SocketAddr,
    /// The token of the current listening period; cancelled by [`Proxy::cut`].
    open: Mutex<CancellationToken>,
}

fn listen(address: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(1024)
}

impl Proxy {
    /// A proxy on a free port of 127.0.0.1 to `127.0.0.1:target_port`, open. Must be called inside
    /// a tokio runtime. The port is outside the kernel's ephemeral range ([`ports::free_port`]), not
    /// port 0's: while the proxy is cut, no client socket takes it as its source port, so
    /// [`Proxy::restore`] can listen on it again.
    pub fn start(target_port: u16) -> Self {
        let port = ports::free_port(Ipv4Addr::LOCALHOST);
        let listener =
            listen(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).expect("proxy listener");
        let address = listener.local_addr().expect("proxy address");
        let proxy = Self {
            address,
            target: SocketAddr::from(([127, 0, 0, 1], target_port)),
            open: Mutex::new(CancellationToken::new()),
        };
        proxy.serve(listener);
        proxy
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let open = self
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let target = self.target;
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = open.cancelled() => break,
                    accepted = listener.accept() => accepted,
                };
                let Ok((mut client, _)) = accepted else {
                    continue;
                };
                let open = open.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        () = open.cancelled() => {
                            // Reset rather than close: a peer that is cut off sees an error.
                            let _ = client.set_zero_linger();
                        }
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                    }
                });
            }
            // The listener is dropped here: connections are refused until `restore`.
        });
    }

    /// Refuses new connections and resets the open ones.
    pub fn cut(&self) {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .cancel();
    }

    /// Listens again on the same address.
    pub fn restore(&self) {
        *self.open.lock().unwrap_or_else(PoisonError::into_inner) = CancellationToken::new();
        let listener = listen(self.address).expect("the proxy's port is free again");
        self.serve(listener);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
    }
}
