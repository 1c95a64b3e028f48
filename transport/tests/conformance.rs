//! The conformance suite run for TCP, Unix domain sockets and the simulated network.
#![allow(
    clippy::unwrap_used,
    reason = "test fixtures panic on failure by design"
)]
#![allow(
    clippy::disallowed_types,
    reason = "a test-local std counter for unique names"
)]

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::Fixture;
use dndm_transport::sim::{Faults, SimNet, SimTransport};
use dndm_transport::{Address, Config, MioTransport};

static NEXT: AtomicUsize = AtomicUsize::new(0);

fn unique() -> usize {
    NEXT.fetch_add(1, Ordering::Relaxed)
}

struct Tcp(MioTransport, MioTransport);

impl Fixture for Tcp {
    type T = MioTransport;
    fn new(config: Config) -> Self {
        Self(
            MioTransport::new(config.clone()).unwrap(),
            MioTransport::new(config).unwrap(),
        )
    }
    fn server(&self) -> &MioTransport {
        &self.0
    }
    fn client(&self) -> &MioTransport {
        &self.1
    }
    fn addr(&self) -> Address {
        "tcp://127.0.0.1:0".parse().unwrap()
    }
    fn settle(&self) {
        std::thread::sleep(Duration::from_micros(200));
    }
}

struct Unix(MioTransport, MioTransport, tempdir::TempDir);

mod tempdir {
    //! A tiny temp dir removed on drop.
    use std::path::{Path, PathBuf};

    pub(crate) struct TempDir(PathBuf);

    impl TempDir {
        pub(crate) fn new(tag: &str) -> Self {
            let p =
                std::env::temp_dir().join(format!("dndm-transport-{}-{tag}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            Self(p)
        }
        pub(crate) fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Fixture for Unix {
    type T = MioTransport;
    fn new(config: Config) -> Self {
        Self(
            MioTransport::new(config.clone()).unwrap(),
            MioTransport::new(config).unwrap(),
            tempdir::TempDir::new(&unique().to_string()),
        )
    }
    fn server(&self) -> &MioTransport {
        &self.0
    }
    fn client(&self) -> &MioTransport {
        &self.1
    }
    fn addr(&self) -> Address {
        let p: PathBuf = self.2.path().join(format!("s{}.sock", unique()));
        Address::Unix(p)
    }
    fn settle(&self) {
        std::thread::sleep(Duration::from_micros(200));
    }
}

struct Sim(SimNet, SimTransport, SimTransport);

impl Fixture for Sim {
    type T = SimTransport;
    fn new(config: Config) -> Self {
        let net = SimNet::new(
            42,
            Faults::default()
                .with_latency(Duration::from_millis(1))
                .with_jitter(Duration::from_micros(500))
                .with_bandwidth(Some(100 << 20)),
        );
        let a = net.host("server", config.clone());
        let b = net.host("client", config);
        Self(net, a, b)
    }
    fn server(&self) -> &SimTransport {
        &self.1
    }
    fn client(&self) -> &SimTransport {
        &self.2
    }
    fn addr(&self) -> Address {
        Address::Mem(format!("svc{}", unique()))
    }
    fn settle(&self) {
        self.0.advance(Duration::from_millis(1));
    }
}

conformance!(tcp, super::Tcp);
conformance!(unix, super::Unix);
conformance!(sim, super::Sim);
