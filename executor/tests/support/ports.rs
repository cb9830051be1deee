//! The one port picker of the test support: a free TCP port for a server a test is about to start
//! (Tansu, pouchdb-server, etcd, a `wasm-invoker` process).
//!
//! Why not "bind port 0 and drop the listener": that port comes from the kernel's ephemeral range
//! (`/proc/sys/net/ipv4/ip_local_port_range`), the same range the kernel takes the source ports of
//! outgoing client sockets from. Between the pick and the server's bind, any client socket of a test
//! running in parallel may take the port, and the server then exits with "Address already in use".
//!
//! So [`free_port`] picks at random a port *outside* the ephemeral range (below its low end, above
//! the well-known and registered services below [`LOWEST`]; above its high end when there is room):
//! the kernel never hands such a port to a client socket, so it stays free between the pick and the
//! server's bind unless another picker picks it. Against that, every picked port is reserved for the
//! rest of the process (never handed out twice, also not while a killed server is down before its
//! restart on the same port) with an abstract Unix socket named after the port: the name is unique
//! machine-wide (per network namespace), so the reservation also holds against the other copies of
//! this module compiled into the same test binary (each support file includes it with `#[path]`) and
//! against the test processes running beside this one; the kernel releases it when the process exits.
//! Before it is handed out, the port is checked bindable on the requested host.
//!
//! Include it with `#[path = ".../executor/tests/support/ports.rs"] mod ports;`.

use std::collections::BTreeSet;
use std::hash::{BuildHasher as _, Hasher as _, RandomState};
use std::io::ErrorKind;
use std::net::{Ipv4Addr, TcpListener};
use std::os::linux::net::SocketAddrExt as _;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::Mutex;

/// The lowest port handed out: above the well-known ports (< 1024) and the registered ports most
/// often taken by services on developer machines (databases, caches, web servers at 3000-9999).
const LOWEST: u16 = 10_000;
/// The ephemeral range when `/proc/sys/net/ipv4/ip_local_port_range` cannot be read: Linux's
/// default.
const DEFAULT_EPHEMERAL: (u16, u16) = (32_768, 60_999);
/// Where the kernel says which ports it hands to client sockets.
const EPHEMERAL_RANGE_FILE: &str = "/proc/sys/net/ipv4/ip_local_port_range";
/// Random ports tried before giving up: thousands of ports outside the ephemeral range are free on a
/// normal machine, so running out of attempts means something else is wrong.
const ATTEMPTS: u32 = 1_000;
/// The prefix of the abstract Unix socket name that reserves a port (machine-wide, see the module
/// documentation).
const RESERVATION_PREFIX: &str = "wasm-invoker-test-port-";

/// What this process reserved: the ports handed out, and the sockets holding their machine-wide
/// reservations (kept open until the process exits).
struct Reserved {
    ports: BTreeSet<u16>,
    sockets: Vec<UnixDatagram>,
}

static RESERVED: Mutex<Reserved> = Mutex::new(Reserved {
    ports: BTreeSet::new(),
    sockets: Vec::new(),
});

/// A port on `host` that no client socket will take, that no other picker hands out while this
/// process runs, and that is free now: a server started on it right after binds it. Panics (failing
/// the test) after [`ATTEMPTS`] ports that were all taken.
pub fn free_port(host: Ipv4Addr) -> u16 {
    let candidates = candidates();
    let random = RandomState::new();
    let mut last_error = None;
    for attempt in 0..ATTEMPTS {
        let mut hasher = random.build_hasher();
        hasher.write_u32(attempt);
        let port = candidates.nth(hasher.finish());
        let mut reserved = RESERVED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if reserved.ports.contains(&port) {
            continue;
        }
        let socket = match reserve(port) {
            Ok(socket) => Some(socket),
            // Another picker (another copy of this module, another test process) has it.
            Err(error) if error.kind() == ErrorKind::AddrInUse => continue,
            // No abstract sockets here: the reservation holds within this copy of the module only.
            Err(_) => None,
        };
        match TcpListener::bind((host, port)) {
            Ok(listener) => drop(listener),
            Err(error) => {
                // Taken by a server outside the pickers; keep the reservation so that no picker
                // tries it again.
                reserved.ports.insert(port);
                reserved.sockets.extend(socket);
                last_error = Some(error);
                continue;
            }
        }
        reserved.ports.insert(port);
        reserved.sockets.extend(socket);
        return port;
    }
    panic!(
        "no free port on {host} in {candidates:?} after {ATTEMPTS} random tries (last error: \
         {last_error:?})"
    );
}

/// Reserves `port` machine-wide: binds the abstract Unix socket named after it.
fn reserve(port: u16) -> std::io::Result<UnixDatagram> {
    let name = format!("{RESERVATION_PREFIX}{port}");
    UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes())?)
}

/// The ports the picker chooses from: the ranges outside the ephemeral range, from [`LOWEST`].
#[derive(Debug, Clone, Copy)]
struct Candidates {
    /// `LOWEST..below`: the ports under the ephemeral range.
    below: u16,
    /// `above..=u16::MAX`: the ports over it (empty when `above` is 0).
    above: u16,
}

impl Candidates {
    fn count(self) -> u64 {
        let below = u64::from(self.below.saturating_sub(LOWEST));
        let above = if self.above == 0 {
            0
        } else {
            u64::from(u16::MAX - self.above) + 1
        };
        below + above
    }

    /// The candidate at `index` (taken modulo their count).
    fn nth(self, index: u64) -> u16 {
        let below = u64::from(self.below.saturating_sub(LOWEST));
        let index = index % self.count();
        let port = if index < below {
            u64::from(LOWEST) + index
        } else {
            u64::from(self.above) + (index - below)
        };
        u16::try_from(port).expect("a candidate is a port number")
    }
}

/// The candidates for this machine's ephemeral range ([`DEFAULT_EPHEMERAL`] when it cannot be read).
/// Panics (failing the test) when the ephemeral range leaves no port from [`LOWEST`] up.
fn candidates() -> Candidates {
    let (low, high) = std::fs::read_to_string(EPHEMERAL_RANGE_FILE)
        .ok()
        .and_then(|text| {
            let mut numbers = text.split_whitespace().map(str::parse::<u16>);
            Some((numbers.next()?.ok()?, numbers.next()?.ok()?))
        })
        .unwrap_or(DEFAULT_EPHEMERAL);
    let candidates = Candidates {
        below: low,
        above: high.checked_add(1).map_or(0, |above| above.max(LOWEST)),
    };
    assert!(
        candidates.count() > 0,
        "the ephemeral port range {low}-{high} leaves no port from {LOWEST} up for test servers"
    );
    candidates
}
