//! Lossless delivery between two processes over TCP loopback.
//!
//! ```text
//! cargo run --release -p dndm --example lossless -- [COUNT]   # default 200,000
//! ```
//!
//! The process started without `--sub` publishes `COUNT` messages carrying
//! their sequence number on `lossless.seq`, with `Policy::Block` on its
//! per-peer queue; it starts itself again with `--sub URI COUNT` as the
//! subscriber (also `Policy::Block`), which checks that every number arrives
//! once and in order and reports back on `lossless.report`. Exit status 0
//! only if all `COUNT` arrived in order and the publisher dropped none. The
//! child exits when its stdin closes, so it never outlives the publisher.
#![allow(
    clippy::disallowed_types,
    reason = "the sync-shim rule is for dndm library code; examples use std like users do"
)]

use std::io::Read;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use dndm::prelude::*;
use rkyv::{Archive, Deserialize, Serialize};

#[derive(Archive, Serialize, Deserialize, Message, Clone, Debug)]
#[message(name = "lossless.Seq")]
struct Seq {
    seq: u64,
}

#[derive(Archive, Serialize, Deserialize, Message, Clone, Debug)]
#[message(name = "lossless.Report")]
struct Report {
    got: u64,
    /// Messages whose number was not the one expected.
    out_of_order: u64,
}

/// Far above any stall on a loaded machine.
const BOUND: Duration = Duration::from_secs(60);

type Result<T = (), E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

fn block() -> Policy {
    Policy::Block {
        timeout: Some(BOUND),
    }
}

fn main() -> Result {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [flag, uri, count] if flag == "--sub" => subscriber(uri, count.parse()?),
        [] => publisher(200_000),
        [count] => publisher(count.replace(['_', ','], "").parse()?),
        _ => Err("usage: lossless [COUNT] | lossless --sub URI COUNT".into()),
    }
}

fn publisher(count: u64) -> Result {
    let node = Node::builder("lossless-pub")
        .peer_queue(1024, block(), BOUND)
        .build()?;
    let addr = node.listen("tcp://127.0.0.1:0")?;
    let publ = node.publish::<Seq>("lossless.seq")?;
    let reports = node.subscribe::<Report>("lossless.report")?;
    let mut child = Command::new(std::env::current_exe()?)
        .args(["--sub", &addr.to_string(), &count.to_string()])
        .stdin(Stdio::piped())
        .spawn()?;
    let stdin = child.stdin.take();
    let result = (|| -> Result<(Report, Duration)> {
        if !publ.wait_for_interest(Some(BOUND)) {
            return Err("the subscriber process did not link".into());
        }
        let start = Instant::now();
        for seq in 0..count {
            publ.send(Seq { seq })
                .map_err(|_| "the subscriber process is gone")?;
        }
        let report = reports
            .recv_timeout(BOUND)
            .map_err(|_| "no report from the subscriber process")?;
        Ok((report.into_inner(), start.elapsed()))
    })();
    drop(stdin);
    let status = child.wait()?;
    let (report, elapsed) = result?;
    let secs = elapsed.as_secs_f64();
    println!(
        "lossless: {count} messages over TCP between two processes in {secs:.2} s ({:.0} msgs/s): \
         {} received, {} lost, {} out of order, {} dropped by the publisher; subscriber {status}",
        count as f64 / secs,
        report.got,
        count - report.got.min(count),
        report.out_of_order,
        publ.dropped()
    );
    if report.got != count || report.out_of_order != 0 || publ.dropped() != 0 || !status.success() {
        return Err("delivery was not lossless and in order".into());
    }
    Ok(())
}

fn subscriber(uri: &str, count: u64) -> Result {
    thread::spawn(|| {
        let mut buf = [0u8; 16];
        while matches!(std::io::stdin().read(&mut buf), Ok(n) if n > 0) {}
        std::process::exit(0);
    });
    let node = Node::builder("lossless-sub")
        .peer_queue(16, block(), BOUND)
        .connect(uri)?
        .build()?;
    let report = node.publish::<Report>("lossless.report")?;
    let sub = node.subscribe_with::<Seq>(
        "lossless.seq",
        SubscribeOptions::new().capacity(1024).policy(block()),
    )?;
    report.wait_for_interest(Some(BOUND));
    let (mut got, mut next, mut out_of_order) = (0u64, 0u64, 0u64);
    while got < count {
        let Ok(m) = sub.recv_timeout(BOUND) else {
            break;
        };
        if m.seq != next {
            out_of_order += 1;
        }
        next = m.seq + 1;
        got += 1;
    }
    report
        .send(Report { got, out_of_order })
        .map_err(|_| "cannot report")?;
    // Stay until the publisher closes stdin: the report must get out.
    thread::sleep(BOUND);
    Ok(())
}
