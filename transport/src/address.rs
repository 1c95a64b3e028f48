//! Transport addresses: one URI syntax for every implementation.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

/// Where to listen or connect, written as a URI.
///
/// | scheme | syntax | example |
/// |---|---|---|
/// | TCP | `tcp://<ip>:<port>` (IPv6 in brackets) | `tcp://127.0.0.1:7447`, `tcp://[::1]:7447` |
/// | Unix | `unix://<path>` (absolute paths give three slashes) | `unix:///run/dndm.sock` |
/// | UDP | `udp://<ip>:<port>` (unicast or multicast group) | `udp://239.255.0.1:7446` |
/// | simulated | `mem://<name>` (`[A-Za-z0-9._-]+`) | `mem://sensor-hub` |
///
/// Hosts are IP literals: the transport does no name resolution. Port 0
/// asks the OS for a free port when listening. [`Display`](fmt::Display)
/// writes the same syntax back, so `addr.to_string().parse()` round-trips.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Address {
    /// A TCP endpoint.
    Tcp(SocketAddr),
    /// A Unix domain socket path.
    Unix(PathBuf),
    /// A UDP endpoint or multicast group.
    Udp(SocketAddr),
    /// A name on the simulated network.
    Mem(String),
}

/// Why a string is not an [`Address`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressParseError {
    /// There is no `scheme://` prefix.
    #[error("address `{input}` has no `scheme://` prefix")]
    MissingScheme {
        /// The input.
        input: String,
    },
    /// The scheme is not `tcp`, `unix`, `udp` or `mem`.
    #[error("address `{input}` has unknown scheme `{scheme}` (expected tcp, unix, udp or mem)")]
    UnknownScheme {
        /// The input.
        input: String,
        /// The scheme found.
        scheme: String,
    },
    /// A `tcp://` or `udp://` address is not `<ip>:<port>`.
    #[error("address `{input}` is not `<ip>:<port>` (host names are not resolved)")]
    BadSocketAddr {
        /// The input.
        input: String,
    },
    /// A `unix://` address has an empty path.
    #[error("address `{input}` has an empty socket path")]
    EmptyPath {
        /// The input.
        input: String,
    },
    /// A `mem://` name is empty or has characters outside `[A-Za-z0-9._-]`.
    #[error("address `{input}` is not a valid simulated name (`[A-Za-z0-9._-]+`)")]
    BadName {
        /// The input.
        input: String,
    },
}

impl Address {
    /// The URI scheme: `tcp`, `unix`, `udp` or `mem`.
    pub fn scheme(&self) -> &'static str {
        match self {
            Self::Tcp(_) => "tcp",
            Self::Unix(_) => "unix",
            Self::Udp(_) => "udp",
            Self::Mem(_) => "mem",
        }
    }
}

impl FromStr for Address {
    type Err = AddressParseError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let Some((scheme, rest)) = input.split_once("://") else {
            return Err(AddressParseError::MissingScheme {
                input: input.to_owned(),
            });
        };
        let sock = || {
            rest.parse::<SocketAddr>()
                .map_err(|_| AddressParseError::BadSocketAddr {
                    input: input.to_owned(),
                })
        };
        match scheme {
            "tcp" => Ok(Self::Tcp(sock()?)),
            "udp" => Ok(Self::Udp(sock()?)),
            "unix" if rest.is_empty() => Err(AddressParseError::EmptyPath {
                input: input.to_owned(),
            }),
            "unix" => Ok(Self::Unix(PathBuf::from(rest))),
            "mem" => {
                let ok = !rest.is_empty()
                    && rest
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
                if ok {
                    Ok(Self::Mem(rest.to_owned()))
                } else {
                    Err(AddressParseError::BadName {
                        input: input.to_owned(),
                    })
                }
            }
            other => Err(AddressParseError::UnknownScheme {
                input: input.to_owned(),
                scheme: other.to_owned(),
            }),
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(a) => write!(f, "tcp://{a}"),
            Self::Udp(a) => write!(f, "udp://{a}"),
            Self::Unix(p) => write!(f, "unix://{}", p.display()),
            Self::Mem(n) => write!(f, "mem://{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for s in [
            "tcp://127.0.0.1:7447",
            "tcp://[::1]:7447",
            "unix:///run/dndm.sock",
            "udp://239.255.0.1:7446",
            "mem://sensor-hub.a_1",
        ] {
            let a: Address = s.parse().unwrap();
            assert_eq!(a.to_string(), s);
        }
    }

    #[test]
    fn typed_errors() {
        assert!(matches!(
            "127.0.0.1:1".parse::<Address>(),
            Err(AddressParseError::MissingScheme { .. })
        ));
        assert!(matches!(
            "http://x".parse::<Address>(),
            Err(AddressParseError::UnknownScheme { .. })
        ));
        assert!(matches!(
            "tcp://localhost:1".parse::<Address>(),
            Err(AddressParseError::BadSocketAddr { .. })
        ));
        assert!(matches!(
            "unix://".parse::<Address>(),
            Err(AddressParseError::EmptyPath { .. })
        ));
        assert!(matches!(
            "mem://a b".parse::<Address>(),
            Err(AddressParseError::BadName { .. })
        ));
        let msg = "tcp://nope".parse::<Address>().unwrap_err().to_string();
        assert!(msg.contains("tcp://nope"), "{msg}");
    }
}
