//! Coordinated omission: a server that stalls 500 ms once, driven in open loop at a fixed
//! rate. The requests the schedule meant to send during the stall wait behind it; their
//! intended-start latency must carry the stall into the tail, while their service time
//! (measured from the late send) must not.

use loadgen::client::{parse_reply, Reply, Target, TargetKind};
use loadgen::driver::{run_phase, DriverConfig, Phase, RunControl};
use loadgen::measure::OperationKind;
use loadgen::workload::{CoreWorkloadConfig, Properties};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

const STALL: Duration = Duration::from_millis(500);
/// The request after which the server stalls once.
const STALL_AFTER_REQUESTS: u64 = 400;

/// A RESP server on 127.0.0.1 answering GET with a value and anything else with +OK,
/// stalling once. Stops accepting when dropped.
struct StallingServer {
    address: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
}

impl StallingServer {
    fn start() -> StallingServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let address = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicU64::new(0));
        let accept_stop = Arc::clone(&stop);
        thread::spawn(move || {
            while !accept_stop.load(Ordering::Acquire) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let requests = Arc::clone(&requests);
                        let stop = Arc::clone(&accept_stop);
                        thread::spawn(move || serve(stream, &requests, &stop));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        StallingServer { address, stop }
    }
}

impl Drop for StallingServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

fn serve(mut stream: TcpStream, requests: &AtomicU64, stop: &AtomicBool) {
    stream.set_nodelay(true).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    while !stop.load(Ordering::Acquire) {
        let read = match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(read) => read,
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => return,
        };
        buffer.extend_from_slice(&chunk[..read]);
        let mut replies = Vec::new();
        loop {
            let (is_get, consumed) = match parse_reply(&buffer).unwrap() {
                Some((Reply::Array(_), consumed)) => (
                    buffer[..consumed].windows(5).any(|w| w == b"\r\nGET"),
                    consumed,
                ),
                Some((_, consumed)) => (false, consumed),
                None => break,
            };
            buffer.drain(..consumed);
            if requests.fetch_add(1, Ordering::SeqCst) + 1 == STALL_AFTER_REQUESTS {
                thread::sleep(STALL);
            }
            replies.extend_from_slice(if is_get {
                b"$5\r\nvalue\r\n"
            } else {
                b"+OK\r\n"
            });
        }
        if stream.write_all(&replies).is_err() {
            return;
        }
    }
}

#[test]
fn a_stall_shows_in_the_intended_tail_not_in_the_service_tail() {
    let server = StallingServer::start();
    let properties = Properties::parse(
        "recordcount=1000\noperationcount=2000\nreadproportion=1\nupdateproportion=0\n",
    );
    let workload = CoreWorkloadConfig::from_properties(&properties).unwrap();
    let target = Target::resolve(&server.address.to_string()).unwrap();
    let mut config = DriverConfig::new(vec![target]);
    config.target_kind = Some(TargetKind::Redis);
    // 1000 ops/s for 2 s: the stall holds back about 500 scheduled requests.
    config.target_operations_per_second = 1000.0;
    let result = run_phase(
        Phase::Run,
        &workload,
        &config,
        &RunControl::default(),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(result.partial, None);
    let read = result.totals.kind(OperationKind::Read);
    assert_eq!(read.operations(), 2000);
    assert_eq!(read.errors(), 0);

    let service_p99 = read.service.value_at_percentile(99.0);
    let service_max = read.service.max();
    let intended_p99 = read.intended.value_at_percentile(99.0);
    let intended_p90 = read.intended.value_at_percentile(90.0);
    println!(
        "service p99 {service_p99} us, max {service_max} us; intended p90 {intended_p90} us, p99 {intended_p99} us"
    );
    // The request in flight during the stall took the whole stall as service time...
    assert!(service_max >= 450_000, "service max {service_max} us");
    // ...but only it: the tail of service times stays far below the stall.
    assert!(
        service_p99 < 100_000,
        "the stall leaked into the service p99: {service_p99} us"
    );
    // Every request scheduled during the stall waited for it: ~25% of the schedule.
    assert!(
        intended_p99 >= 300_000,
        "the stall is missing from the intended p99: {intended_p99} us"
    );
    assert!(
        intended_p90 >= 100_000,
        "the stall is missing from the intended p90: {intended_p90} us"
    );
}
