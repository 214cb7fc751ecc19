import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  KAFKA_CLUSTER_BROKERS,
  kafkaClusterPorts,
  redisClusterPorts,
  type ServiceName,
  type StackConfig,
  versions,
} from "./config.js";
import { probeCassandra, probeKafka, probeKafkaCluster, redisCommand } from "./probes.js";

/** One process of a service: the single-node services have one, the clusters several. */
export interface MemberSpec {
  /** Names its pid and log files (`run/<id>.pid`, `logs/<id>.log`). */
  id: string;
  /** Ports it binds; each must be free before it starts. */
  ports: number[];
  /** Write configs and initialise data dirs; returns the command to run. */
  prepare(): { command: string; args: string[]; env?: Record<string, string> };
}

export interface ServiceSpec {
  name: ServiceName;
  /** The variable that moves its (first) port, named in the error when a port is taken. */
  portVariable: string;
  members: MemberSpec[];
  /** Download what is missing into the shared cache (idempotent). */
  fetch(): void;
  /**
   * Once the members run, before the probe: one-time set-up that needs them all (creating the
   * Redis Cluster). Idempotent; retried like a probe until it resolves.
   */
  bootstrap?(): Promise<void>;
  /** Resolves when the service answers a real request; rejects with the reason otherwise. */
  probe(): Promise<void>;
  readyTimeoutMs: number;
}

/** Every port a service binds. */
export const portsOf = (spec: ServiceSpec) => spec.members.flatMap((m) => m.ports);

function mvn(args: string[], cwd: string): void {
  try {
    execFileSync("mvn", ["-q", "-B", ...args], { cwd, stdio: ["ignore", "pipe", "pipe"] });
  } catch (error) {
    const e = error as { stdout?: Buffer; stderr?: Buffer; code?: string };
    if (e.code === "ENOENT") throw new Error("Maven (mvn) is not installed: apt-get install -y maven");
    throw new Error(`Maven failed (${args.join(" ")}):\n${e.stdout ?? ""}${e.stderr ?? ""}`);
  }
}

/** Copy the runtime jars of scripts/stack/maven/<name>/pom.xml into the cache, once per version. */
function fetchJars(config: StackConfig, name: string, version: string): string {
  const libDir = join(config.cacheDir, `${name}-${version}`, "lib");
  if (existsSync(join(libDir, ".complete"))) return libDir;
  const staging = `${libDir}.partial`;
  rmSync(staging, { recursive: true, force: true });
  console.log(
    `stack: fetching ${name} ${version} jars from Maven Central (once; cached in ${config.cacheDir})`,
  );
  mvn(
    ["dependency:copy-dependencies", "-DincludeScope=runtime", `-DoutputDirectory=${staging}`],
    join(config.repoRoot, "scripts", "stack", "maven", name),
  );
  writeFileSync(join(staging, ".complete"), "");
  rmSync(libDir, { recursive: true, force: true });
  mkdirSync(join(libDir, ".."), { recursive: true });
  renameSync(staging, libDir);
  return libDir;
}

function dirs(config: StackConfig, name: string) {
  const data = join(config.stateDir, "data", name);
  const conf = join(config.stateDir, "conf", name);
  mkdirSync(data, { recursive: true });
  mkdirSync(conf, { recursive: true });
  return { data, conf };
}

function java(): string {
  return process.env["JAVA_HOME"] ? join(process.env["JAVA_HOME"], "bin", "java") : "java";
}

interface BrokerSettings {
  nodeId: number;
  port: number;
  controllerPort: number;
  /** `controller.quorum.voters`: id@host:port of every controller. */
  voters: string;
  data: string;
  conf: string;
  /** Replication of internal topics and the default for new topics; min ISR is one less (≥ 1). */
  replication: number;
  extra?: string[];
}

const kafkaLib = (config: StackConfig) => join(config.cacheDir, `kafka-${versions.kafka}`, "lib");

/** Writes server.properties and log4j.properties, formats the log dir once; returns the command. */
function prepareBroker(config: StackConfig, b: BrokerSettings, clusterId: () => string) {
  const minIsr = Math.max(1, b.replication - 1);
  const properties = join(b.conf, "server.properties");
  writeFileSync(
    properties,
    [
      "process.roles=broker,controller",
      `node.id=${b.nodeId}`,
      `controller.quorum.voters=${b.voters}`,
      `listeners=PLAINTEXT://127.0.0.1:${b.port},CONTROLLER://127.0.0.1:${b.controllerPort}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${b.port}`,
      "controller.listener.names=CONTROLLER",
      "inter.broker.listener.name=PLAINTEXT",
      "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
      `log.dirs=${b.data}`,
      "num.partitions=1",
      `default.replication.factor=${b.replication}`,
      `min.insync.replicas=${minIsr}`,
      `offsets.topic.replication.factor=${b.replication}`,
      "offsets.topic.num.partitions=4",
      `transaction.state.log.replication.factor=${b.replication}`,
      `transaction.state.log.min.isr=${minIsr}`,
      "transaction.state.log.num.partitions=4",
      "group.initial.rebalance.delay.ms=0",
      "auto.create.topics.enable=false",
      ...(b.extra ?? []),
      "",
    ].join("\n"),
  );
  const log4j = join(b.conf, "log4j.properties");
  writeFileSync(
    log4j,
    [
      "log4j.rootLogger=WARN, stdout",
      "log4j.appender.stdout=org.apache.log4j.ConsoleAppender",
      "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout",
      "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n",
      "log4j.logger.kafka.server.KafkaRaftServer=INFO",
      "",
    ].join("\n"),
  );
  const classpath = `${kafkaLib(config)}/*`;
  const log4jArg = `-Dlog4j.configuration=file:${log4j}`;
  if (!existsSync(join(b.data, "meta.properties"))) {
    execFileSync(
      java(),
      [
        "-cp",
        classpath,
        log4jArg,
        "kafka.tools.StorageTool",
        "format",
        `--cluster-id=${clusterId()}`,
        "-c",
        properties,
        "--ignore-formatted",
      ],
      { stdio: "pipe" },
    );
  }
  return { classpath, log4jArg, properties };
}

/**
 * A KRaft cluster id is 16 random bytes, base64url without padding. Not one starting with "-": the
 * StorageTool would read it as an option (Kafka's own random-uuid never makes one either).
 */
function newClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString("base64url");
    if (!id.startsWith("-")) return id;
  }
}

function kafka(config: StackConfig): ServiceSpec {
  const { kafka: port, kafkaController: controllerPort } = config.ports;
  return {
    name: "kafka",
    portVariable: "TESSERA_KAFKA_PORT",
    members: [
      {
        id: "kafka",
        ports: [port, controllerPort],
        prepare() {
          const { data, conf } = dirs(config, "kafka");
          const voters = `1@127.0.0.1:${controllerPort}`;
          const settings = { nodeId: 1, port, controllerPort, voters, data, conf, replication: 1 };
          const { classpath, log4jArg, properties } = prepareBroker(config, settings, newClusterId);
          return {
            command: java(),
            args: [
              "-Xms256m",
              "-Xmx512m",
              "-XX:+UseG1GC",
              "-cp",
              classpath,
              log4jArg,
              "kafka.Kafka",
              properties,
            ],
          };
        },
      },
    ],
    fetch: () => void fetchJars(config, "kafka", versions.kafka),
    probe: () => probeKafka(`127.0.0.1:${port}`),
    readyTimeoutMs: 90_000,
  };
}

/**
 * Three KRaft nodes, each broker and controller, one cluster id formatted into all three. Topics
 * default to replication factor 3 and min.insync.replicas 2, as in production. Failure detection is
 * shortened (broker session 6 s) so fault tests see a killed broker fenced quickly.
 */
function kafkaCluster(config: StackConfig): ServiceSpec {
  const ports = kafkaClusterPorts(config);
  const controllerPorts = ports.map((p) => p + 100);
  const voters = ports.map((_, i) => `${i + 1}@127.0.0.1:${controllerPorts[i]}`).join(",");
  const root = () => dirs(config, "kafka-cluster");
  // Every node is formatted with the same cluster id, kept beside the configs.
  const clusterId = () => {
    const file = join(root().conf, "cluster.id");
    if (!existsSync(file)) writeFileSync(file, newClusterId());
    return readFileSync(file, "utf8").trim();
  };
  return {
    name: "kafka-cluster",
    portVariable: "TESSERA_KAFKA_CLUSTER_PORT",
    members: ports.map((port, i) => ({
      id: `kafka-cluster-${i + 1}`,
      ports: [port, controllerPorts[i]!],
      prepare() {
        const data = join(root().data, String(i + 1));
        const conf = join(root().conf, String(i + 1));
        mkdirSync(data, { recursive: true });
        mkdirSync(conf, { recursive: true });
        const settings: BrokerSettings = {
          nodeId: i + 1,
          port,
          controllerPort: controllerPorts[i]!,
          voters,
          data,
          conf,
          replication: KAFKA_CLUSTER_BROKERS,
          extra: ["broker.session.timeout.ms=6000", "broker.heartbeat.interval.ms=1000"],
        };
        const { classpath, log4jArg, properties } = prepareBroker(config, settings, clusterId);
        return {
          command: java(),
          args: [
            "-Xms128m",
            "-Xmx384m",
            "-XX:+UseG1GC",
            "-cp",
            classpath,
            log4jArg,
            "kafka.Kafka",
            properties,
          ],
        };
      },
    })),
    fetch: () => void fetchJars(config, "kafka", versions.kafka),
    probe: () => probeKafkaCluster(ports.map((p) => `127.0.0.1:${p}`)),
    readyTimeoutMs: 180_000,
  };
}

function registry(config: StackConfig): ServiceSpec {
  const port = config.ports.registry;
  const home = () => join(config.cacheDir, `apicurio-${versions.apicurio}`);
  return {
    name: "registry",
    portVariable: "TESSERA_REGISTRY_PORT",
    members: [{ id: "registry", ports: [port], prepare: () => prepareRegistry() }],
    fetch() {
      if (existsSync(join(home(), ".complete"))) return;
      const staging = `${home()}.partial`;
      rmSync(staging, { recursive: true, force: true });
      mkdirSync(staging, { recursive: true });
      console.log(`stack: fetching Apicurio Registry ${versions.apicurio} from Maven Central (once)`);
      mvn(
        [
          "dependency:copy",
          `-Dartifact=io.apicurio:apicurio-registry-app:${versions.apicurio}:tar.gz:all`,
          `-DoutputDirectory=${staging}`,
        ],
        config.repoRoot,
      );
      const archive = readdirSync(staging).find((f) => f.endsWith(".tar.gz"));
      if (!archive) throw new Error("Apicurio archive missing after download");
      execFileSync("tar", ["xzf", archive], { cwd: staging });
      rmSync(join(staging, archive));
      writeFileSync(join(staging, ".complete"), "");
      rmSync(home(), { recursive: true, force: true });
      renameSync(staging, home());
    },
    async probe() {
      const response = await fetch(`http://127.0.0.1:${port}/apis/ccompat/v7/subjects`, {
        signal: AbortSignal.timeout(2000),
      });
      if (response.status !== 200) throw new Error(`registry answered HTTP ${response.status}`);
    },
    readyTimeoutMs: 120_000,
  };

  function prepareRegistry() {
    dirs(config, "registry");
    const runner = readdirSync(home()).find((f) => f.endsWith("-runner.jar"));
    if (!runner) throw new Error(`no *-runner.jar in ${home()}; delete it to re-fetch`);
    return {
      command: java(),
      args: [
        "-Xms128m",
        "-Xmx384m",
        "-Dquarkus.http.host=127.0.0.1",
        `-Dquarkus.http.port=${port}`,
        // In-memory H2 storage: schemas live as long as the process, like a test registry should.
        "-Dquarkus.log.level=WARN",
        '-Dquarkus.log.category."io.quarkus".level=INFO',
        "-jar",
        join(home(), runner),
      ],
    };
  }
}

function requireRedis(): void {
  try {
    execFileSync("redis-server", ["--version"], { stdio: "ignore" });
    execFileSync("redis-cli", ["--version"], { stdio: "ignore" });
  } catch {
    throw new Error("redis-server is not installed: apt-get update && apt-get install -y redis-server");
  }
}

function redis(config: StackConfig): ServiceSpec {
  const port = config.ports.redis;
  return {
    name: "redis",
    portVariable: "TESSERA_REDIS_PORT",
    members: [
      {
        id: "redis",
        ports: [port],
        prepare() {
          const { data } = dirs(config, "redis");
          return {
            command: "redis-server",
            args: [
              "--bind",
              "127.0.0.1",
              "--port",
              String(port),
              "--dir",
              data,
              "--save",
              "",
              "--appendonly",
              "no",
            ],
          };
        },
      },
    ],
    fetch: requireRedis,
    probe: async () => {
      const reply = await redisCommand(port, "PING");
      if (reply !== "PONG") throw new Error(`redis answered ${JSON.stringify(reply)}`);
    },
    readyTimeoutMs: 15_000,
  };
}

/** `CLUSTER INFO` as a map (cluster_state, cluster_slots_assigned, cluster_known_nodes, …). */
async function clusterInfo(port: number): Promise<Map<string, string>> {
  return redisInfo(port, "CLUSTER INFO");
}

async function redisInfo(port: number, command: string): Promise<Map<string, string>> {
  const text = await redisCommand(port, command);
  return new Map(
    text
      .split("\r\n")
      .filter((line) => line.includes(":"))
      .map((line) => line.split(":", 2) as [string, string]),
  );
}

/**
 * Six cluster-enabled redis-servers (3 primaries, 3 replicas after `redis-cli --cluster create`).
 * Each keeps its node table in nodes-<port>.conf and its data in an append-only file, so a member
 * that is killed and started again rejoins with its data (as a replica if it was failed over).
 */
function redisCluster(config: StackConfig): ServiceSpec {
  const ports = redisClusterPorts(config);
  return {
    name: "redis-cluster",
    portVariable: "TESSERA_REDIS_CLUSTER_PORT",
    members: ports.map((port) => ({
      id: `redis-cluster-${port}`,
      ports: [port, port + 10_000],
      prepare() {
        const data = join(dirs(config, "redis-cluster").data, String(port));
        mkdirSync(data, { recursive: true });
        return {
          command: "redis-server",
          args: [
            "--bind",
            "127.0.0.1",
            "--port",
            String(port),
            "--dir",
            data,
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            `nodes-${port}.conf`,
            "--cluster-node-timeout",
            "2000",
            "--save",
            "",
            "--appendonly",
            "yes",
          ],
        };
      },
    })),
    fetch: requireRedis,
    async bootstrap() {
      const infos = await Promise.all(ports.map(clusterInfo));
      if (infos.some((info) => info.get("cluster_slots_assigned") !== "0")) return; // created before
      execFileSync(
        "redis-cli",
        [
          "--cluster",
          "create",
          ...ports.map((p) => `127.0.0.1:${p}`),
          "--cluster-replicas",
          "1",
          "--cluster-yes",
        ],
        { stdio: "pipe" },
      );
    },
    async probe() {
      for (const port of ports) {
        const info = await clusterInfo(port);
        if (info.get("cluster_state") !== "ok" || info.get("cluster_known_nodes") !== String(ports.length)) {
          throw new Error(
            `node ${port}: cluster_state:${info.get("cluster_state")}, ${info.get("cluster_known_nodes")} known nodes`,
          );
        }
        // A replica still syncing would lose what a WAIT-acknowledged flush needs it to hold.
        const replication = await redisInfo(port, "INFO replication");
        if (replication.get("role") === "slave" && replication.get("master_link_status") !== "up") {
          throw new Error(`node ${port}: replica link ${replication.get("master_link_status")}`);
        }
      }
    },
    readyTimeoutMs: 60_000,
  };
}

/**
 * An S3-compatible server: moto's, from PyPI, in a virtualenv in the shared cache. Objects live in
 * memory (gone when it stops). It answers PutObject with If-None-Match: * by 412 when the key
 * exists, which is the conditional write the archiver's roll claims rely on.
 */
function s3(config: StackConfig): ServiceSpec {
  const port = config.ports.s3;
  const home = () => join(config.cacheDir, `moto-${versions.moto}`);
  return {
    name: "s3",
    portVariable: "TESSERA_S3_PORT",
    members: [
      {
        id: "s3",
        ports: [port],
        prepare() {
          dirs(config, "s3");
          return {
            command: join(home(), "bin", "moto_server"),
            args: ["-H", "127.0.0.1", "-p", String(port)],
          };
        },
      },
    ],
    fetch() {
      if (existsSync(join(home(), ".complete"))) return;
      console.log(`stack: installing moto[server] ${versions.moto} from PyPI into ${home()} (once)`);
      rmSync(home(), { recursive: true, force: true });
      try {
        execFileSync("python3", ["-m", "venv", home()], { stdio: "pipe" });
        execFileSync(
          join(home(), "bin", "pip"),
          ["install", "--quiet", "--disable-pip-version-check", `moto[server]==${versions.moto}`],
          { stdio: "pipe" },
        );
      } catch (error) {
        const e = error as { stderr?: Buffer; code?: string };
        throw new Error(
          e.code === "ENOENT"
            ? "python3 is not installed: apt-get install -y python3 python3-venv"
            : `installing moto failed (python3-venv missing?):\n${e.stderr ?? ""}`,
        );
      }
      writeFileSync(join(home(), ".complete"), "");
    },
    async probe() {
      const response = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) });
      if (response.status !== 200) throw new Error(`S3 server answered HTTP ${response.status}`);
    },
    readyTimeoutMs: 60_000,
  };
}

/** Java 17 module flags, from upstream conf/jvm17-server.options (cassandra-5.0). */
const cassandraJava17Flags = [
  "-Djdk.attach.allowAttachSelf=true",
  ...[
    "java.base/jdk.internal.misc",
    "java.management.rmi/com.sun.jmx.remote.internal.rmi",
    "java.rmi/sun.rmi.registry",
    "java.rmi/sun.rmi.server",
    "java.sql/java.sql",
    "java.base/java.lang.ref",
    "jdk.unsupported/sun.misc",
    "jdk.compiler/com.sun.tools.javac.file",
    "jdk.attach/sun.tools.attach",
  ].flatMap((m) => ["--add-exports", `${m}=ALL-UNNAMED`]),
  ...[
    "java.base/java.lang.module",
    "java.base/jdk.internal.loader",
    "java.base/jdk.internal.ref",
    "java.base/jdk.internal.reflect",
    "java.base/jdk.internal.math",
    "java.base/jdk.internal.module",
    "java.base/jdk.internal.util.jar",
    "jdk.management/com.sun.management.internal",
    "java.base/sun.nio.ch",
    "java.base/java.io",
    "java.base/java.lang.reflect",
    "jdk.compiler/com.sun.tools.javac",
    "java.base/java.lang",
    "java.base/java.util",
  ].flatMap((m) => ["--add-opens", `${m}=ALL-UNNAMED`]),
  "-Dio.netty.tryReflectionSetAccessible=true",
];

function cassandra(config: StackConfig): ServiceSpec {
  const { cassandra: port, cassandraStorage: storagePort } = config.ports;
  const lib = () => join(config.cacheDir, `cassandra-${versions.cassandra}`, "lib");
  return {
    name: "cassandra",
    portVariable: "TESSERA_CASSANDRA_PORT",
    members: [{ id: "cassandra", ports: [port, storagePort], prepare: () => prepareCassandra() }],
    fetch: () => void fetchJars(config, "cassandra", versions.cassandra),
    probe: () => probeCassandra(`127.0.0.1:${port}`),
    readyTimeoutMs: 180_000,
  };

  function prepareCassandra() {
    const { data, conf } = dirs(config, "cassandra");
    const yaml = join(conf, "cassandra.yaml");
    writeFileSync(
      yaml,
      `cluster_name: tessera-local
num_tokens: 1
initial_token: 0
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "127.0.0.1:${storagePort}"
listen_address: 127.0.0.1
rpc_address: 127.0.0.1
storage_port: ${storagePort}
native_transport_port: ${port}
start_native_transport: true
commitlog_sync: periodic
commitlog_sync_period: 10000ms
commitlog_directory: ${data}/commitlog
data_file_directories: [${data}/data]
saved_caches_directory: ${data}/saved_caches
hints_directory: ${data}/hints
cdc_raw_directory: ${data}/cdc_raw
authenticator: AllowAllAuthenticator
authorizer: AllowAllAuthorizer
memtable_heap_space: 64MiB
memtable_offheap_space: 64MiB
concurrent_reads: 8
concurrent_writes: 8
concurrent_counter_writes: 4
auto_snapshot: false
dynamic_snitch: false
# A processor flush is one logged batch (tiles + offsets, atomic); the 50KiB default caps it at ~600 tiles.
batch_size_warn_threshold: 1MiB
batch_size_fail_threshold: 8MiB
`,
    );
    const logback = join(conf, "logback.xml");
    writeFileSync(
      logback,
      `<configuration>
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%-5level %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="STDOUT"/></root>
</configuration>
`,
    );
    const jamm = readdirSync(lib()).find((f) => /^jamm-.*\.jar$/.test(f));
    if (!jamm) throw new Error(`no jamm jar in ${lib()}`);
    const tmp = join(data, "tmp");
    mkdirSync(tmp, { recursive: true });
    return {
      command: java(),
      args: [
        "-Xms1g",
        "-Xmx1g",
        "-XX:+UseG1GC",
        "-XX:+ExitOnOutOfMemoryError",
        ...cassandraJava17Flags,
        `-javaagent:${join(lib(), jamm)}`,
        "-Dcassandra-foreground=yes",
        `-Dcassandra.config=file://${yaml}`,
        `-Dcassandra.storagedir=${data}`,
        "-Dcassandra.skip_wait_for_gossip_to_settle=0",
        `-Dlogback.configurationFile=${logback}`,
        // JNA unpacks a native library here: it must allow executables.
        `-Djava.io.tmpdir=${tmp}`,
        "-cp",
        `${lib()}/*`,
        "org.apache.cassandra.service.CassandraDaemon",
      ],
    };
  }
}

export function serviceSpecs(config: StackConfig): Record<ServiceName, ServiceSpec> {
  return {
    kafka: kafka(config),
    registry: registry(config),
    redis: redis(config),
    cassandra: cassandra(config),
    "redis-cluster": redisCluster(config),
    "kafka-cluster": kafkaCluster(config),
    s3: s3(config),
  };
}
