//! A read-modify-write whose SET is in flight when the connection fails is counted as it
//! would have been had the SET come back with an error: a failed UPDATE and a failed
//! READ-MODIFY-WRITE (availability counts an RMW as its read and its update, so an RMW
//! counted only as a whole would vanish from it).

use loadgen::client::{parse_reply, Reply, Target, TargetKind};
use loadgen::driver::{run_phase, DriverConfig, Phase, RunControl};
use loadgen::measure::{OperationKind, Outcome};
use loadgen::workload::{CoreWorkloadConfig, Properties};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

/// A RESP server on 127.0.0.1: answers GET (and anything else) with a value and closes a
/// connection at its first SET.
fn serve_until_a_set() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            std::thread::spawn(move || serve(stream));
        }
    });
    address
}

fn serve(mut stream: std::net::TcpStream) {
    {
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut buffer = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let Ok(read) = stream.read(&mut chunk) else {
                return;
            };
            if read == 0 {
                return;
            }
            buffer.extend_from_slice(&chunk[..read]);
            while let Some((reply, consumed)) = parse_reply(&buffer).unwrap() {
                let Reply::Array(_) = reply else {
                    panic!("a request is an array");
                };
                if buffer[..consumed].windows(5).any(|w| w == b"\r\nSET") {
                    return; // drops the stream: the SET never gets a reply
                }
                buffer.drain(..consumed);
                if stream.write_all(b"$5\r\nvalue\r\n").is_err() {
                    return;
                }
            }
        }
    }
}

#[test]
fn an_rmw_failing_in_flight_counts_as_a_failed_update_and_rmw() {
    let address = serve_until_a_set();
    let properties = Properties::parse(
        "recordcount=10\noperationcount=5\nreadproportion=0\nupdateproportion=0\n\
         readmodifywriteproportion=1\n",
    );
    let workload = CoreWorkloadConfig::from_properties(&properties).unwrap();
    let target = Target::resolve(&address.to_string()).unwrap();
    let mut config = DriverConfig::new(vec![target]);
    config.target_kind = Some(TargetKind::Redis);
    config.threads = 1;
    config.connections_per_thread = 1;
    let control = RunControl::default();
    let result = run_phase(Phase::Run, &workload, &config, &control, &mut |_| {}).unwrap();
    assert!(
        result.partial.is_some(),
        "the connection failed: a partial run"
    );
    let count =
        |kind: OperationKind, outcome: Outcome| result.totals.kind(kind).outcomes[outcome.index()];
    assert_eq!(count(OperationKind::Read, Outcome::Ok), 1);
    assert_eq!(count(OperationKind::Update, Outcome::Error), 1);
    assert_eq!(count(OperationKind::ReadModifyWrite, Outcome::Error), 1);
    assert_eq!(result.totals.operations(), 3);
}
