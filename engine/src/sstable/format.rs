//! Block handles, block trailers, compression and the footer. The whole file layout is
//! described in the `sstable` module documentation.

use super::block::Block;
use super::coding::{put_u32, put_u64, put_varint, read_u32_at, read_u64_at, Reader};
use crate::error::{Error, Result};
use crate::options::Compression;
use std::borrow::Cow;
use std::cell::RefCell;
use std::path::Path;

/// "SSTABLE1" read as a little-endian u64 spells `1ELBATSS`; any fixed value would do.
pub const MAGIC: u64 = 0x5353_5441_424c_4531;
pub const FORMAT_VERSION: u32 = 1;
pub const FOOTER_SIZE_BYTES: usize = 64;
/// Compression type byte plus crc32c.
pub const BLOCK_TRAILER_SIZE_BYTES: usize = 5;
/// Largest uncompressed block a reader accepts, so that a corrupt length cannot make it
/// allocate without bound. A block holds at least one entry, and one entry may be a 64 MiB
/// value plus its key and metadata.
pub const BLOCK_UNCOMPRESSED_SIZE_BYTES_MAX: usize = 256 << 20;

/// How the stored bytes of a block are encoded (the first byte of its trailer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum CompressionType {
    None = 0,
    /// A varint uncompressed length, then one zstd frame.
    Zstd = 1,
}

/// Where a block's stored bytes lie in the file; the trailer follows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlockHandle {
    pub offset: u64,
    /// Stored bytes, trailer excluded.
    pub size: u64,
}

impl BlockHandle {
    /// Offset just past the block's trailer.
    pub fn end_with_trailer(&self) -> Option<u64> {
        self.offset
            .checked_add(self.size)?
            .checked_add(BLOCK_TRAILER_SIZE_BYTES as u64)
    }
}

/// Reusable compression state of one table builder.
pub struct BlockCompressor {
    compression: Compression,
    zstd: Option<zstd::bulk::Compressor<'static>>,
    scratch: Vec<u8>,
}

impl BlockCompressor {
    pub fn new(compression: Compression) -> BlockCompressor {
        BlockCompressor {
            compression,
            zstd: None,
            scratch: Vec::new(),
        }
    }

    /// Appends the stored form of `raw` and its trailer to `output`; returns the size of
    /// the stored bytes. Compression is kept only when it saves at least 1/8, because
    /// decompressing costs every read and a small saving does not pay for it.
    pub fn write_block(&mut self, raw: &[u8], output: &mut Vec<u8>) -> std::io::Result<usize> {
        let start = output.len();
        let mut kind = CompressionType::None;
        if let Compression::Zstd { level } = self.compression {
            if self.zstd.is_none() {
                self.zstd = Some(zstd::bulk::Compressor::new(level)?);
            }
            if let Some(compressor) = self.zstd.as_mut() {
                self.scratch.clear();
                self.scratch
                    .reserve(zstd::zstd_safe::compress_bound(raw.len()));
                let compressed_length = compressor.compress_to_buffer(raw, &mut self.scratch)?;
                let mut prefix = Vec::with_capacity(10);
                put_varint(&mut prefix, raw.len() as u64);
                if prefix.len() + compressed_length <= raw.len() - raw.len() / 8 {
                    output.extend_from_slice(&prefix);
                    output.extend_from_slice(&self.scratch[..compressed_length]);
                    kind = CompressionType::Zstd;
                }
            }
        }
        if kind == CompressionType::None {
            output.extend_from_slice(raw);
        }
        let stored_length = output.len() - start;
        output.push(kind as u8);
        put_u32(
            output,
            block_checksum(&output[start..start + stored_length + 1]),
        );
        Ok(stored_length)
    }
}

/// crc32c of the stored bytes followed by the compression type byte, so a flipped type is
/// caught too. Unmasked: no block embeds another block's checksum.
pub fn block_checksum(stored_and_type: &[u8]) -> u32 {
    crc32c::crc32c(stored_and_type)
}

thread_local! {
    /// One decompression context per reading thread: creating one per block would cost
    /// more than decompressing a 4 KiB block.
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
}

/// Verifies the checksum of the block at `handle` in `file` and returns its uncompressed
/// contents, borrowed from `file` when the block is stored raw.
pub fn read_block_contents<'a>(
    file: &'a [u8],
    handle: BlockHandle,
    what: &'static str,
    path: &Path,
) -> Result<Cow<'a, [u8]>> {
    let range = usize::try_from(handle.offset)
        .ok()
        .zip(usize::try_from(handle.size).ok())
        .and_then(|(offset, size)| {
            let end = offset.checked_add(size)?;
            (end.checked_add(BLOCK_TRAILER_SIZE_BYTES)? <= file.len()).then_some(offset..end)
        })
        .ok_or_else(|| {
            Error::corruption(
                what,
                path,
                handle.offset,
                format!(
                    "block of {} bytes runs past the end of the file",
                    handle.size
                ),
            )
        })?;
    let stored = &file[range.clone()];
    let type_byte = file[range.end];
    let expected = read_u32_at(file, range.end + 1).unwrap_or_default();
    let actual = block_checksum(&file[range.start..range.end + 1]);
    if expected != actual {
        return Err(Error::ChecksumMismatch {
            path: path.to_path_buf(),
            offset: handle.offset,
            expected,
            actual,
        });
    }
    match type_byte {
        0 => Ok(Cow::Borrowed(stored)),
        1 => decompress(stored)
            .map(Cow::Owned)
            .map_err(|detail| Error::corruption(what, path, handle.offset, detail)),
        other => Err(Error::corruption(
            what,
            path,
            handle.offset,
            format!("unknown compression type {other}"),
        )),
    }
}

fn decompress(stored: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let mut reader = Reader::new(stored);
    let length = reader.varint_usize().map_err(|error| error.to_string())?;
    if length > BLOCK_UNCOMPRESSED_SIZE_BYTES_MAX {
        return Err(format!("uncompressed length {length} exceeds the limit"));
    }
    let frame = &stored[reader.position()..];
    let mut output = Vec::with_capacity(length);
    let written = DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(zstd::bulk::Decompressor::new()?);
        }
        match slot.as_mut() {
            Some(decompressor) => decompressor.decompress_to_buffer(frame, &mut output),
            None => Err(std::io::Error::other("no zstd context")),
        }
    });
    match written {
        Ok(written) if written == length => Ok(output),
        Ok(written) => Err(format!(
            "zstd frame holds {written} bytes, header says {length}"
        )),
        Err(error) => Err(format!("zstd: {error}")),
    }
}

/// Reads, verifies and decodes the data block at `handle`.
pub fn read_data_block(file: &[u8], handle: BlockHandle, path: &Path) -> Result<Block> {
    let contents = read_block_contents(file, handle, "data block", path)?;
    Block::decode(contents.into_owned())
        .map_err(|error| error.into_error("data block", path, handle.offset))
}

/// Reads the data block at `handle` with a positioned read (no mapping), verifies and
/// decodes it. `data_end` bounds where data blocks may lie.
pub fn pread_data_block(
    file: &std::fs::File,
    data_end: u64,
    handle: BlockHandle,
    path: &Path,
) -> Result<Block> {
    use std::os::unix::fs::FileExt;
    let span_end = handle
        .offset
        .checked_add(handle.size)
        .and_then(|end| end.checked_add(BLOCK_TRAILER_SIZE_BYTES as u64))
        .filter(|end| *end <= data_end)
        .ok_or_else(|| {
            Error::corruption(
                "data block",
                path,
                handle.offset,
                format!("block of {} bytes runs past the data area", handle.size),
            )
        })?;
    let mut buffer = vec![0u8; (span_end - handle.offset) as usize];
    file.read_exact_at(&mut buffer, handle.offset)
        .map_err(|error| Error::io(path, error))?;
    let relative = BlockHandle {
        offset: 0,
        size: handle.size,
    };
    let contents = read_block_contents(&buffer, relative, "data block", path)
        .map_err(|error| rebase_offset(error, handle.offset))?;
    Block::decode(contents.into_owned())
        .map_err(|error| error.into_error("data block", path, handle.offset))
}

/// Makes an offset reported relative to a block buffer absolute in the file.
fn rebase_offset(error: Error, base: u64) -> Error {
    match error {
        Error::ChecksumMismatch {
            path,
            offset,
            expected,
            actual,
        } => Error::ChecksumMismatch {
            path,
            offset: offset + base,
            expected,
            actual,
        },
        Error::Corruption {
            what,
            path,
            offset,
            detail,
        } => Error::Corruption {
            what,
            path,
            offset: offset + base,
            detail,
        },
        other => other,
    }
}

/// The fixed-size end of a table file.
///
/// ```text
/// 0   u64 filter offset     8  u64 filter size
/// 16  u64 index offset      24 u64 index size
/// 32  u64 properties offset 40 u64 properties size
/// 48  u32 format version    52 u32 crc32c of bytes 0..52
/// 56  u64 magic
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footer {
    pub filter: BlockHandle,
    pub index: BlockHandle,
    pub properties: BlockHandle,
}

impl Footer {
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(FOOTER_SIZE_BYTES);
        for handle in [self.filter, self.index, self.properties] {
            put_u64(&mut bytes, handle.offset);
            put_u64(&mut bytes, handle.size);
        }
        put_u32(&mut bytes, FORMAT_VERSION);
        let checksum = crc32c::crc32c(&bytes);
        put_u32(&mut bytes, checksum);
        put_u64(&mut bytes, MAGIC);
        assert_eq!(bytes.len(), FOOTER_SIZE_BYTES);
        bytes
    }

    /// Decodes the last [`FOOTER_SIZE_BYTES`] of a file of `file_size` bytes. The magic
    /// is checked first (is this a table at all?), then the version (a newer footer may
    /// not even have its checksum where this one does), then the checksum.
    pub fn decode(bytes: &[u8], file_size: u64, path: &Path) -> Result<Footer> {
        let footer_offset = file_size.saturating_sub(FOOTER_SIZE_BYTES as u64);
        let corrupt = |detail: String| Error::corruption("footer", path, footer_offset, detail);
        if bytes.len() != FOOTER_SIZE_BYTES {
            return Err(corrupt(format!(
                "file of {file_size} bytes is shorter than the {FOOTER_SIZE_BYTES}-byte footer"
            )));
        }
        let magic = read_u64_at(bytes, 56).unwrap_or_default();
        if magic != MAGIC {
            return Err(corrupt(format!(
                "bad magic {magic:#018x}, expected {MAGIC:#018x}"
            )));
        }
        let version = read_u32_at(bytes, 48).unwrap_or_default();
        if version != FORMAT_VERSION {
            return Err(Error::UnsupportedVersion {
                path: path.to_path_buf(),
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let expected = read_u32_at(bytes, 52).unwrap_or_default();
        let actual = crc32c::crc32c(&bytes[..52]);
        if expected != actual {
            return Err(Error::ChecksumMismatch {
                path: path.to_path_buf(),
                offset: footer_offset,
                expected,
                actual,
            });
        }
        let handle = |position: usize| BlockHandle {
            offset: read_u64_at(bytes, position).unwrap_or_default(),
            size: read_u64_at(bytes, position + 8).unwrap_or_default(),
        };
        let footer = Footer {
            filter: handle(0),
            index: handle(16),
            properties: handle(32),
        };
        // The builder writes filter, index and properties back to back before the footer.
        let contiguous = footer.filter.end_with_trailer() == Some(footer.index.offset)
            && footer.index.end_with_trailer() == Some(footer.properties.offset)
            && footer.properties.end_with_trailer() == Some(footer_offset);
        if !contiguous {
            return Err(corrupt(format!("block handles out of place: {footer:?}")));
        }
        Ok(footer)
    }
}
