//! Records as YCSB's core workload writes them: `fieldcount` fields named
//! `<fieldnameprefix>0, 1, ...`, each a run of random printable bytes whose length comes
//! from `fieldlengthdistribution`.

use rand::RngCore;

use super::generator::{UniformLongGenerator, ZipfianGenerator};

/// Field names `prefix0 .. prefix{count-1}`, YCSB's `fieldnames` list.
pub fn field_names(prefix: &str, count: u64) -> Vec<String> {
    (0..count).map(|index| format!("{prefix}{index}")).collect()
}

/// Field lengths per `fieldlengthdistribution` (`histogram` is refused by the config).
#[derive(Debug, Clone)]
pub enum FieldLengthGenerator {
    /// Always `fieldlength`.
    Constant(u64),
    /// Uniform over `minfieldlength ..= fieldlength`.
    Uniform(UniformLongGenerator),
    /// Zipfian over `minfieldlength ..= fieldlength`, favouring short fields.
    Zipfian(ZipfianGenerator),
}

impl FieldLengthGenerator {
    /// The next field length in bytes.
    pub fn next_length(&mut self, rng: &mut dyn RngCore) -> u64 {
        let length = match self {
            Self::Constant(length) => return *length,
            Self::Uniform(generator) => generator.next_value(rng),
            Self::Zipfian(generator) => generator.next_value(rng),
        };
        length.max(0) as u64
    }
}

/// Random bytes as YCSB's `RandomByteIterator` makes them: each 32-bit draw gives six bytes,
/// `' '` plus bits of the draw masked by 31, 63, 95, 31, 63, 95, so bytes are 32 to 127 (the
/// mask 95 skips 64..95 and reaches DEL, 127, as YCSB does) and the byte mix, hence the
/// compressibility of values, matches YCSB's.
pub fn random_printable_bytes(length: usize, rng: &mut dyn RngCore) -> Vec<u8> {
    const SHIFTS_AND_MASKS: [(u32, u32); 6] =
        [(0, 31), (5, 63), (10, 95), (15, 31), (20, 63), (25, 95)];
    let mut bytes = Vec::with_capacity(length);
    while bytes.len() < length {
        let drawn = rng.next_u32();
        for (shift, mask) in SHIFTS_AND_MASKS.iter().take(length - bytes.len()) {
            bytes.push(b' ' + ((drawn >> shift) & mask) as u8);
        }
    }
    bytes
}

#[cfg(test)]
mod tests {
    use rand::{rngs::StdRng, SeedableRng};

    use super::*;

    #[test]
    fn field_names_follow_the_prefix() {
        assert_eq!(field_names("field", 3), vec!["field0", "field1", "field2"]);
        assert!(field_names("f", 0).is_empty());
    }

    #[test]
    fn random_bytes_are_ycsb_printable_and_of_the_asked_length() {
        let mut rng = StdRng::seed_from_u64(8);
        for length in [0, 1, 5, 6, 7, 100] {
            let bytes = random_printable_bytes(length, &mut rng);
            assert_eq!(bytes.len(), length);
            assert!(
                bytes.iter().all(|byte| (32..=127).contains(byte)),
                "{bytes:?}"
            );
        }
    }

    #[test]
    fn field_lengths_respect_their_distribution() {
        let mut rng = StdRng::seed_from_u64(10);
        let mut constant = FieldLengthGenerator::Constant(100);
        assert_eq!(constant.next_length(&mut rng), 100);
        let mut uniform = FieldLengthGenerator::Uniform(UniformLongGenerator::new(1, 100));
        let mut zipfian = FieldLengthGenerator::Zipfian(ZipfianGenerator::new(1, 100));
        let mut zipfian_total = 0;
        for _ in 0..1000 {
            assert!((1..=100).contains(&uniform.next_length(&mut rng)));
            let length = zipfian.next_length(&mut rng);
            assert!((1..=100).contains(&length), "{length}");
            zipfian_total += length;
        }
        assert!(zipfian_total / 1000 < 40, "zipfian favours short fields");
    }
}
