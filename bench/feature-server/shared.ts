/** The benchmark's view: 10 windowed features over one source, two hops (5 min and 1 h). */
export const DEFINITIONS = `
sources: [{ name: tx, topic: payments.transactions, entity: card_id, timestamp: ts }]
views:
  - name: card
    source: tx
    features:
      - { name: n_10m, op: count, window: 10m, hop: 5m }
      - { name: n_1h, op: count, window: 1h, hop: 5m }
      - { name: sum_1h, op: sum, column: amount, window: 1h, hop: 5m }
      - { name: max_1h, op: max, column: amount, window: 1h, hop: 5m }
      - { name: mean_1h, op: mean, column: amount, window: 1h, hop: 5m }
      - { name: n_1d, op: count, window: 1d, hop: 1h }
      - { name: sum_1d, op: sum, column: amount, window: 1d, hop: 1h }
      - { name: mean_1d, op: mean, column: amount, window: 1d, hop: 1h }
      - { name: std_1d, op: stddev, column: amount, window: 1d, hop: 1h }
      - { name: min_1d, op: min, column: amount, window: 1d, hop: 1h }
`;

export const KEY = "bench-key-0123456789abcdef0123456789abcdef";

/** RedisOnlineStore's key layout (libs/stores/src/online/redis.ts), for the bare baseline's raw read. */
export const tileKey = (prefix: string, view: string, version: string, entity: string) =>
  `${prefix}t:${encodeURIComponent(view)}:${encodeURIComponent(version)}:{${encodeURIComponent(entity)}}`;
