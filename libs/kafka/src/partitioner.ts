/**
 * Kafka's default partitioner for keyed records: murmur2 of the key bytes, positive, modulo the
 * partition count (the Java client's and KafkaJS's DefaultPartitioner). Both buses and the
 * partition-per-request sender place keys with it, so a key lands where Kafka would put it.
 */

/** Kafka's murmur2 (as in the Java client's and KafkaJS's default partitioners). */
export function murmur2(data: Buffer): number {
  const m = 0x5bd1e995;
  let h = 0x9747b28c ^ data.length;
  const whole = data.length & ~3;
  for (let i = 0; i < whole; i += 4) {
    let k = data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m) ^ k;
  }
  const rest = data.length & 3;
  if (rest === 3) h ^= data[whole + 2]! << 16;
  if (rest >= 2) h ^= data[whole + 1]! << 8;
  if (rest >= 1) h = Math.imul(h ^ data[whole]!, m);
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h;
}

export const partitionForKey = (key: Buffer | string, partitions: number) =>
  (murmur2(Buffer.isBuffer(key) ? key : Buffer.from(key)) & 0x7fffffff) % partitions;
