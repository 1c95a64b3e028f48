//! The pairing table: which baseline each dndm benchmark is compared with.
//!
//! This is the one place that says what a row of the bench report compares.
//! `cargo xtask bench` fails when a crate's benches and this table disagree:
//! a criterion function whose id starts with `dndm` and appears in no row, a
//! baseline function that no row compares with, or a row naming a function
//! the crate did not measure.
//!
//! Rules for a row, so that every ratio is an honest one:
//!
//! * a batch case (`dndm_batch64`: `send_iter` / `recv_batch`) is compared
//!   with batch baselines only, a per-message case with per-message ones;
//! * both sides get the same total queue capacity (see each bench file);
//! * `unit` says how the row reads: a rate needs the criterion group to
//!   declare the matching `Throughput`, `Nanos` reads the median time.

/// How a row is measured and which way its ratio points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unit {
    /// Messages per second, from `Throughput::Elements`.
    Msgs,
    /// Frames per second, from `Throughput::Elements`.
    Frames,
    /// Bytes per second, from `Throughput::Bytes`.
    Bytes,
    /// Nanoseconds per iteration (lower is better).
    Nanos,
}

impl Unit {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Unit::Msgs => "msgs/s",
            Unit::Frames => "frames/s",
            Unit::Bytes => "bytes/s",
            Unit::Nanos => "ns",
        }
    }

    /// Rates are better when higher, times when lower.
    pub(crate) fn is_rate(self) -> bool {
        !matches!(self, Unit::Nanos)
    }
}

/// One row of the report: a dndm function beside one baseline function of
/// the same criterion group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pair {
    /// Folder of the crate whose benches measure both (`core`, `facade`, …).
    pub(crate) krate: &'static str,
    /// Criterion group id.
    pub(crate) group: &'static str,
    /// Our function id; starts with `dndm`.
    pub(crate) dndm: &'static str,
    /// The baseline's function id.
    pub(crate) baseline: &'static str,
    pub(crate) unit: Unit,
}

impl Pair {
    /// Criterion's full id of our side, `group/function`.
    pub(crate) fn dndm_id(&self) -> String {
        format!("{}/{}", self.group, self.dndm)
    }

    /// Criterion's full id of the baseline side.
    pub(crate) fn baseline_id(&self) -> String {
        format!("{}/{}", self.group, self.baseline)
    }
}

const fn p(
    krate: &'static str,
    group: &'static str,
    dndm: &'static str,
    baseline: &'static str,
    unit: Unit,
) -> Pair {
    Pair {
        krate,
        group,
        dndm,
        baseline,
        unit,
    }
}

use Unit::{Bytes, Frames, Msgs, Nanos};

/// Every comparison, in report order (one row per line, hence no rustfmt).
#[rustfmt::skip]
pub(crate) const PAIRS: &[Pair] = &[
    // crate       criterion group        dndm function     baseline function     unit
    // core/benches/channel.rs: per message vs per message, batch vs batch.
    p("core",      "spsc_64B",            "dndm",           "crossbeam",          Msgs),
    p("core",      "spsc_64B",            "dndm",           "std_mpsc",           Msgs),
    p("core",      "spsc_64B",            "dndm",           "rtrb",               Msgs),
    p("core",      "spsc_64B",            "dndm_batch64",   "crossbeam_try_iter", Msgs),
    p("core",      "spsc_64B",            "dndm_batch64",   "rtrb_chunk",         Msgs),
    p("core",      "mpsc_4to1_64B",       "dndm",           "crossbeam",          Msgs),
    p("core",      "fanout_1to4_64B",     "dndm",           "crossbeam",          Msgs),
    p("core",      "fanout_1to4_64B",     "dndm_batch64",   "crossbeam_try_iter", Msgs),
    p("core",      "fanout_1to4_64B",     "dndm_batch64",   "rtrb_chunk",         Msgs),
    p("core",      "pingpong_64B",        "dndm",           "crossbeam",          Nanos),
    // core/benches/fence.rs: the default FenceMode (Asymmetric) beside the
    // other one, each in its own process.
    p("core",      "fence_stream_64B",    "dndm",           "symmetric",          Msgs),
    p("core",      "fence_sleep",         "dndm",           "symmetric",          Nanos),
    p("core",      "fence_bystander",     "dndm",           "symmetric",          Nanos),
    // codec/benches/codec.rs: one message per iteration.
    p("codec",     "encode_64B",          "dndm",           "postcard",           Frames),
    p("codec",     "encode_64B",          "dndm",           "bincode",            Frames),
    p("codec",     "encode_64B",          "dndm",           "memcpy",             Frames),
    p("codec",     "access_64B",          "dndm_validated", "postcard_decode",    Frames),
    p("codec",     "access_64B",          "dndm_validated", "bincode_decode",     Frames),
    p("codec",     "access_64B",          "dndm_validated", "memcpy",             Frames),
    p("codec",     "access_64B",          "dndm_trusted",   "postcard_decode",    Frames),
    p("codec",     "access_64B",          "dndm_trusted",   "bincode_decode",     Frames),
    p("codec",     "access_64B",          "dndm_trusted",   "memcpy",             Frames),
    p("codec",     "deserialize_64B",     "dndm",           "postcard",           Frames),
    p("codec",     "deserialize_64B",     "dndm",           "bincode",            Frames),
    p("codec",     "encode_1KiB",         "dndm",           "postcard",           Frames),
    p("codec",     "encode_1KiB",         "dndm",           "bincode",            Frames),
    p("codec",     "encode_1KiB",         "dndm",           "memcpy",             Frames),
    p("codec",     "access_1KiB",         "dndm_validated", "postcard_decode",    Frames),
    p("codec",     "access_1KiB",         "dndm_validated", "bincode_decode",     Frames),
    p("codec",     "access_1KiB",         "dndm_validated", "memcpy",             Frames),
    p("codec",     "access_1KiB",         "dndm_trusted",   "postcard_decode",    Frames),
    p("codec",     "access_1KiB",         "dndm_trusted",   "bincode_decode",     Frames),
    p("codec",     "access_1KiB",         "dndm_trusted",   "memcpy",             Frames),
    p("codec",     "deserialize_1KiB",    "dndm",           "postcard",           Frames),
    p("codec",     "deserialize_1KiB",    "dndm",           "bincode",            Frames),
    p("codec",     "encode_64KiB",        "dndm",           "postcard",           Frames),
    p("codec",     "encode_64KiB",        "dndm",           "bincode",            Frames),
    p("codec",     "encode_64KiB",        "dndm",           "memcpy",             Frames),
    p("codec",     "access_64KiB",        "dndm_validated", "postcard_decode",    Frames),
    p("codec",     "access_64KiB",        "dndm_validated", "bincode_decode",     Frames),
    p("codec",     "access_64KiB",        "dndm_validated", "memcpy",             Frames),
    p("codec",     "access_64KiB",        "dndm_trusted",   "postcard_decode",    Frames),
    p("codec",     "access_64KiB",        "dndm_trusted",   "bincode_decode",     Frames),
    p("codec",     "access_64KiB",        "dndm_trusted",   "memcpy",             Frames),
    p("codec",     "deserialize_64KiB",   "dndm",           "postcard",           Frames),
    p("codec",     "deserialize_64KiB",   "dndm",           "bincode",            Frames),
    p("codec",     "stream_decode_1KiB",  "dndm",           "memcpy",             Bytes),
    // transport/benches/tcp.rs: the same bytes through a raw std stream.
    p("transport", "tcp_oneway_64B",      "dndm",           "raw_tcpstream",      Frames),
    p("transport", "tcp_oneway_1KiB",     "dndm",           "raw_tcpstream",      Frames),
    p("transport", "tcp_oneway_64KiB",    "dndm",           "raw_tcpstream",      Frames),
    p("transport", "tcp_pingpong_64B",    "dndm",           "raw_tcpstream",      Nanos),
    p("transport", "unix_oneway_64B",     "dndm",           "raw_unixstream",     Frames),
    p("transport", "unix_oneway_1KiB",    "dndm",           "raw_unixstream",     Frames),
    p("transport", "unix_oneway_64KiB",   "dndm",           "raw_unixstream",     Frames),
    p("transport", "unix_pingpong_64B",   "dndm",           "raw_unixstream",     Nanos),
    // router/benches/router.rs: index and linker vs naive scans.
    p("router",    "match_10k_patterns",  "dndm_index",     "naive_scan",         Nanos),
    p("router",    "link_10k_x_10k",      "dndm_linker",    "naive_pairwise",     Nanos),
    // The 32-segment `**.*.**.*…` pattern against 10,000 entries, beside the
    // same lookup with an exact route or pattern (bar: <= 10 us a match).
    p("router", "worst_pattern_32_selector_index_10k", "dndm_worst_pattern", "exact_route", Nanos),
    p("router", "worst_pattern_32_route_index_10k", "dndm_worst_pattern", "exact_pattern", Nanos),
    // A thousand 64-byte data frames through two peer sessions (alias
    // tables, limits, batching) vs the same framing with the codec alone.
    p("router",    "session_data_64B",    "dndm_session",   "raw_frames",         Frames),
    // facade/benches/pubsub.rs: the Node API vs the layer below it.
    p("facade",    "pubsub_64B",          "dndm",           "core_channel",       Msgs),
    p("facade",    "publish_no_interest", "dndm",           "core_channel",       Nanos),
    p("facade",    "request_reply",       "dndm",           "crossbeam_pair",     Nanos),
    // scope/benches/scope.rs: scopes vs their depth 1, a locked map, a
    // channel pair and bare node handles (bars: publish >= 0.95, reads >= 1).
    p("scope",     "scope_publish_64B",   "dndm_depth32",   "depth1",             Msgs),
    p("scope",     "scope_state_read",    "dndm_reader",    "rwlock_hashmap",     Nanos),
    p("scope",     "scope_state_read_2r1w", "dndm_reader",  "rwlock_hashmap",     Msgs),
    p("scope",     "scope_state_write",   "dndm",           "rwlock_hashmap",     Nanos),
    p("scope",     "scope_observer_pingpong", "dndm",       "crossbeam_pair",     Nanos),
    p("scope",     "scope_create_drop",   "dndm_scope",     "node_handles",       Nanos),
    // facade/benches/remote.rs: publisher -> subscriber processes vs the
    // same payloads, length-prefixed, through raw std streams to processes.
    p("facade",    "remote_tcp_8B",       "dndm",           "raw_tcpstream",      Msgs),
    p("facade",    "remote_tcp_64B",      "dndm",           "raw_tcpstream",      Msgs),
    p("facade",    "remote_tcp_1KiB",     "dndm",           "raw_tcpstream",      Msgs),
    p("facade",    "remote_tcp_64KiB",    "dndm",           "raw_tcpstream",      Bytes),
    p("facade",    "remote_unix_8B",      "dndm",           "raw_unixstream",     Msgs),
    p("facade",    "remote_unix_64B",     "dndm",           "raw_unixstream",     Msgs),
    p("facade",    "remote_unix_1KiB",    "dndm",           "raw_unixstream",     Msgs),
    p("facade",    "remote_unix_64KiB",   "dndm",           "raw_unixstream",     Bytes),
    p("facade",    "remote_fanout3_tcp_64B", "dndm",        "raw_tcpstream",      Msgs),
    // Request/reply round trip to a server process vs a raw stream echo.
    p("facade",    "remote_rpc_tcp_64B",  "dndm",           "raw_tcpstream_echo", Nanos),
    // In process: a 64 KiB message to 4 subscribers vs to 1 (the same Node
    // API) and vs a crossbeam fan-out of 4 `Vec<u8>` clones.
    p("facade",    "fanout_64KiB",        "dndm_4subs",     "single_subscriber",  Msgs),
    p("facade",    "fanout_64KiB",        "dndm_4subs",     "crossbeam_4clones",  Msgs),
];
