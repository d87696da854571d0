use super::*;

/// Both backends, skipping io_uring with a notice where this host cannot run it.
pub(crate) fn available_backends() -> Vec<IoBackend> {
    let mut backends = vec![IoBackend::Std];
    match uring_available() {
        Ok(()) => backends.push(IoBackend::Uring),
        Err(error) => eprintln!("NOTICE: skipping the io_uring backend: {error}"),
    }
    backends
}

fn uring_available() -> Result<()> {
    let directory = tempfile::tempdir().map_err(|error| Error::io("tempdir", error))?;
    let path = directory.path().join("probe");
    match LogFile::open(&path, OpenMode::CreateNew, IoBackend::Uring) {
        Ok(file) => file.close(),
        Err(error) => Err(error),
    }
}

#[test]
fn write_sync_truncate_round_trip_on_every_backend() {
    for backend in available_backends() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("file.log");
        let file = LogFile::open(&path, OpenMode::CreateNew, backend).unwrap();
        file.write_at(b"hello ", 0).unwrap();
        file.write_at_and_sync(b"world", 6).unwrap();
        file.sync_data().unwrap();
        assert_eq!(file.length().unwrap(), 11, "{backend:?}");
        file.truncate(5).unwrap();
        file.sync_data().unwrap();
        file.close().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"hello", "{backend:?}");

        let reopened = LogFile::open(&path, OpenMode::Existing, backend).unwrap();
        reopened.write_at(b"!", 5).unwrap();
        reopened.close().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"hello!", "{backend:?}");
    }
}

#[test]
fn create_new_refuses_an_existing_file() {
    for backend in available_backends() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("file.log");
        std::fs::write(&path, b"x").unwrap();
        let error = LogFile::open(&path, OpenMode::CreateNew, backend)
            .err()
            .unwrap();
        assert!(matches!(error, Error::Io { .. }), "{error}");
    }
}

#[test]
fn concurrent_writes_and_syncs_all_land() {
    for backend in available_backends() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("file.log");
        let file = LogFile::open(&path, OpenMode::CreateNew, backend).unwrap();
        std::thread::scope(|scope| {
            for thread_index in 0..4u64 {
                let file = &file;
                scope.spawn(move || {
                    for chunk in 0..50u64 {
                        let offset = (thread_index * 50 + chunk) * 8;
                        file.write_at(&offset.to_le_bytes(), offset).unwrap();
                        if chunk % 10 == 0 {
                            file.sync_data().unwrap();
                        }
                    }
                });
            }
        });
        file.close().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 200 * 8);
        for (index, chunk) in bytes.chunks_exact(8).enumerate() {
            let value = u64::from_le_bytes(chunk.try_into().unwrap());
            assert_eq!(value, index as u64 * 8, "{backend:?}");
        }
    }
}
