//! Where a container polls: a scheduler's gRPC `host:port`, taken from the creation message
//! (`schedulerHost`, `rpcPort`) or from a queue's leader key in etcd.

use std::fmt;

/// One scheduler's gRPC address. Displays as `host:port`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SchedulerEndpoint {
    /// Host name or IP address, as the scheduler advertised it.
    pub host: String,
    /// The scheduler's gRPC port (`rpcPort`).
    pub port: u16,
}

impl SchedulerEndpoint {
    /// An endpoint from its parts.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
        }
    }

    /// The plaintext HTTP/2 URI tonic connects to: the scheduler serves gRPC without TLS (h2c).
    /// An IPv6 literal is bracketed.
    pub fn uri(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("http://[{}]:{}", self.host, self.port)
        } else {
            format!("http://{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for SchedulerEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_display_and_uri() {
        let endpoint = SchedulerEndpoint::new("scheduler0", 13001);
        assert_eq!(endpoint.to_string(), "scheduler0:13001");
        assert_eq!(endpoint.uri(), "http://scheduler0:13001");
        assert_eq!(SchedulerEndpoint::new("::1", 5).uri(), "http://[::1]:5");
    }
}
