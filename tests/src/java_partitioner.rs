//! What the Java client's default partitioner does with a key: `toPositive(murmur2(key)) % partitions`
//! (`org.apache.kafka.clients.producer.internals.BuiltInPartitioner.partitionForKey`). A test oracle: the
//! tests check courier's producers against it, and it is checked against the Java client's own test vectors.

/// The Java client's `Utils.murmur2`: MurmurHash2, 32 bits, seed `0x9747b28c`, little-endian words.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let length = data.len();
    let mut h = SEED ^ (length as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition the Java client's default partitioner picks for `key` among `partitions`.
pub fn java_partition(key: &[u8], partitions: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) % partitions
}

/// The Java client's own murmur2 vectors (`UtilsTest.testMurmur2` in Apache Kafka's clients module).
pub const JAVA_MURMUR2_VECTORS: [(&str, i32); 6] = [
    ("21", -973_932_308),
    ("foobar", -790_332_482),
    ("a-little-bit-long-string", -985_981_536),
    ("a-little-bit-longer-string", -1_486_304_829),
    ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58_897_971),
    ("abc", 479_470_107),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oracle_gives_the_java_clients_hashes() {
        for (key, hash) in JAVA_MURMUR2_VECTORS {
            assert_eq!(murmur2(key.as_bytes()), hash, "{key}");
        }
    }

    #[test]
    fn partitions_are_the_positive_hash_modulo_the_count() {
        // -973932308 & 0x7fffffff = 1173551340; 1173551340 % 16 = 12.
        assert_eq!(java_partition(b"21", 16), 12);
        for (key, _) in JAVA_MURMUR2_VECTORS {
            assert!((0..7).contains(&java_partition(key.as_bytes(), 7)));
        }
    }
}
