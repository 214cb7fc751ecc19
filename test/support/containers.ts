/**
 * Services as containers, for machines where a Docker engine answers. Images match
 * docker-compose.yml, so tests see what a compose user runs.
 */
import {
  GenericContainer,
  Network,
  type StartedNetwork,
  type StartedTestContainer,
  Wait,
} from "testcontainers";
import type { SingleServiceName as ServiceName } from "../../scripts/stack/config.js";
import type { ServiceEndpoints } from "./services.js";

export const images = {
  kafka: "apache/kafka:3.9.2",
  registry: "confluentinc/cp-schema-registry:7.9.0",
  redis: "redis:7.4-alpine",
  cassandra: "cassandra:5.0",
} as const;

export async function startContainers(
  names: ServiceName[],
  log: (line: string) => void,
): Promise<{ endpoints: Partial<ServiceEndpoints>; stop(): Promise<void> }> {
  const network: StartedNetwork = await new Network().start();
  const started: StartedTestContainer[] = [];
  const endpoints: Partial<ServiceEndpoints> = {};
  const want = new Set(names);
  // The registry stores schemas in Kafka, so it needs a broker even when Kafka came from the env.
  const needsKafka = want.has("kafka") || want.has("registry");

  if (needsKafka) {
    const hostPort = 19092;
    const kafka = await new GenericContainer(images.kafka)
      .withNetwork(network)
      .withNetworkAliases("kafka")
      .withExposedPorts({ container: hostPort, host: hostPort })
      .withEnvironment({
        KAFKA_NODE_ID: "1",
        KAFKA_PROCESS_ROLES: "broker,controller",
        KAFKA_LISTENERS: `PLAINTEXT://:${hostPort},INTERNAL://:29092,CONTROLLER://:9093`,
        KAFKA_ADVERTISED_LISTENERS: `PLAINTEXT://127.0.0.1:${hostPort},INTERNAL://kafka:29092`,
        KAFKA_LISTENER_SECURITY_PROTOCOL_MAP: "PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
        KAFKA_INTER_BROKER_LISTENER_NAME: "INTERNAL",
        KAFKA_CONTROLLER_LISTENER_NAMES: "CONTROLLER",
        KAFKA_CONTROLLER_QUORUM_VOTERS: "1@kafka:9093",
        KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: "1",
        KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: "1",
        KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: "1",
        KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS: "0",
        KAFKA_AUTO_CREATE_TOPICS_ENABLE: "false",
      })
      .withWaitStrategy(Wait.forLogMessage("Kafka Server started"))
      .start();
    started.push(kafka);
    if (want.has("kafka")) endpoints.KAFKA_BROKERS = `127.0.0.1:${hostPort}`;
  }
  if (want.has("registry")) {
    const registry = await new GenericContainer(images.registry)
      .withNetwork(network)
      .withExposedPorts(8081)
      .withEnvironment({
        SCHEMA_REGISTRY_HOST_NAME: "schema-registry",
        SCHEMA_REGISTRY_LISTENERS: "http://0.0.0.0:8081",
        SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS: "PLAINTEXT://kafka:29092",
      })
      .withWaitStrategy(Wait.forHttp("/subjects", 8081))
      .start();
    started.push(registry);
    endpoints.SCHEMA_REGISTRY_URL = `http://${registry.getHost()}:${registry.getMappedPort(8081)}`;
  }
  if (want.has("redis")) {
    const redis = await new GenericContainer(images.redis)
      .withExposedPorts(6379)
      .withWaitStrategy(Wait.forLogMessage("Ready to accept connections"))
      .start();
    started.push(redis);
    endpoints.REDIS_URL = `redis://${redis.getHost()}:${redis.getMappedPort(6379)}`;
  }
  if (want.has("cassandra")) {
    const cassandra = await new GenericContainer(images.cassandra)
      .withExposedPorts(9042)
      .withEnvironment({ MAX_HEAP_SIZE: "1G", HEAP_NEWSIZE: "256M" })
      .withWaitStrategy(Wait.forLogMessage(/Starting listening for CQL clients/))
      .withStartupTimeout(240_000)
      .start();
    started.push(cassandra);
    endpoints.CASSANDRA_CONTACT_POINTS = `${cassandra.getHost()}:${cassandra.getMappedPort(9042)}`;
  }
  log(`test services: started containers for ${names.join(", ")}`);
  return {
    endpoints,
    stop: async () => {
      for (const container of started.reverse()) await container.stop();
      await network.stop();
    },
  };
}
