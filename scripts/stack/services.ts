import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { join } from "node:path";
import { type ServiceName, type StackConfig, versions } from "./config.js";
import { probeCassandra, probeKafka } from "./probes.js";

export interface ServiceSpec {
  name: ServiceName;
  /** Ports the service binds; each must be free before it starts. */
  ports: number[];
  /** Download what is missing into the shared cache (idempotent). */
  fetch(): void;
  /** Write configs and initialise data dirs; returns the command to run. */
  prepare(): { command: string; args: string[]; env?: Record<string, string> };
  /** Resolves when the service answers a real request; rejects with the reason otherwise. */
  probe(): Promise<void>;
  readyTimeoutMs: number;
}

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

function kafka(config: StackConfig): ServiceSpec {
  const { kafka: port, kafkaController: controllerPort } = config.ports;
  const lib = () => join(config.cacheDir, `kafka-${versions.kafka}`, "lib");
  return {
    name: "kafka",
    ports: [port, controllerPort],
    fetch: () => void fetchJars(config, "kafka", versions.kafka),
    prepare() {
      const { data, conf } = dirs(config, "kafka");
      const properties = join(conf, "server.properties");
      writeFileSync(
        properties,
        [
          "process.roles=broker,controller",
          "node.id=1",
          `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
          `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
          `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
          "controller.listener.names=CONTROLLER",
          "inter.broker.listener.name=PLAINTEXT",
          "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
          `log.dirs=${data}`,
          "num.partitions=1",
          "offsets.topic.replication.factor=1",
          "offsets.topic.num.partitions=4",
          "transaction.state.log.replication.factor=1",
          "transaction.state.log.min.isr=1",
          "transaction.state.log.num.partitions=4",
          "group.initial.rebalance.delay.ms=0",
          "auto.create.topics.enable=false",
          "",
        ].join("\n"),
      );
      const log4j = join(conf, "log4j.properties");
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
      const classpath = `${lib()}/*`;
      const log4jArg = `-Dlog4j.configuration=file:${log4j}`;
      if (!existsSync(join(data, "meta.properties"))) {
        // A KRaft cluster id is 16 random bytes, base64url without padding.
        const clusterId = randomBytes(16).toString("base64url");
        execFileSync(
          java(),
          [
            "-cp",
            classpath,
            log4jArg,
            "kafka.tools.StorageTool",
            "format",
            "-t",
            clusterId,
            "-c",
            properties,
            "--ignore-formatted",
          ],
          { stdio: "pipe" },
        );
      }
      return {
        command: java(),
        args: ["-Xms256m", "-Xmx512m", "-XX:+UseG1GC", "-cp", classpath, log4jArg, "kafka.Kafka", properties],
      };
    },
    probe: () => probeKafka(`127.0.0.1:${port}`),
    readyTimeoutMs: 90_000,
  };
}

function registry(config: StackConfig): ServiceSpec {
  const port = config.ports.registry;
  const home = () => join(config.cacheDir, `apicurio-${versions.apicurio}`);
  return {
    name: "registry",
    ports: [port],
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
    prepare() {
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
    },
    async probe() {
      const response = await fetch(`http://127.0.0.1:${port}/apis/ccompat/v7/subjects`, {
        signal: AbortSignal.timeout(2000),
      });
      if (response.status !== 200) throw new Error(`registry answered HTTP ${response.status}`);
    },
    readyTimeoutMs: 120_000,
  };
}

function redis(config: StackConfig): ServiceSpec {
  const port = config.ports.redis;
  return {
    name: "redis",
    ports: [port],
    fetch() {
      try {
        execFileSync("redis-server", ["--version"], { stdio: "ignore" });
      } catch {
        throw new Error("redis-server is not installed: apt-get update && apt-get install -y redis-server");
      }
    },
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
    probe: () => redisPing(port),
    readyTimeoutMs: 15_000,
  };
}

function redisPing(port: number): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const socket = createConnection({ host: "127.0.0.1", port }, () => socket.write("PING\r\n"));
    socket.setTimeout(2000, () => socket.destroy(new Error("redis PING timed out")));
    socket.once("data", (chunk) => {
      socket.destroy();
      if (chunk.toString().startsWith("+PONG")) resolvePromise();
      else reject(new Error(`redis answered ${JSON.stringify(chunk.toString().trim())}`));
    });
    socket.once("error", reject);
  });
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
    ports: [port, storagePort],
    fetch: () => void fetchJars(config, "cassandra", versions.cassandra),
    prepare() {
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
    },
    probe: () => probeCassandra(`127.0.0.1:${port}`),
    readyTimeoutMs: 180_000,
  };
}

export function serviceSpecs(config: StackConfig): Record<ServiceName, ServiceSpec> {
  return {
    kafka: kafka(config),
    registry: registry(config),
    redis: redis(config),
    cassandra: cassandra(config),
  };
}
