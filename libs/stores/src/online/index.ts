import { CassandraOnlineStore, type CassandraOnlineStoreConfig } from "./cassandra.js";
import { MemoryOnlineStore, type MemoryOnlineStoreConfig } from "./memory.js";
import { RedisOnlineStore, type RedisOnlineStoreConfig } from "./redis.js";
import type { OnlineStore } from "./types.js";

export type OnlineStoreConfig = RedisOnlineStoreConfig | CassandraOnlineStoreConfig | MemoryOnlineStoreConfig;

/** The online store a config names. Connections open lazily; the first call waits (within its timeout). */
export function createOnlineStore(config: OnlineStoreConfig): OnlineStore {
  switch (config.kind) {
    case "redis":
      return new RedisOnlineStore(config);
    case "cassandra":
      return new CassandraOnlineStore(config);
    case "memory":
      return new MemoryOnlineStore(config);
  }
}
