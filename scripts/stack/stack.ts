/**
 * The native local stack: Kafka (KRaft), Apicurio Registry (Confluent API), Redis and Cassandra,
 * started from Maven Central jars and Debian's redis-server on 127.0.0.1. No Docker needed.
 *
 *   tsx scripts/stack/stack.ts up [--only kafka,redis]   start (idempotent), wait until ready
 *   tsx scripts/stack/stack.ts down [--only …]           stop exactly what `up` started
 *   tsx scripts/stack/stack.ts status                    what runs, where, and whether it answers
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { connectionEnv, loadConfig, type ServiceName, type StackConfig, serviceNames } from "./config.js";
import {
  alive,
  describeListener,
  isOurs,
  portInUse,
  readPid,
  sleep,
  startDetached,
  stopProcess,
  tail,
} from "./processes.js";
import { type ServiceSpec, serviceSpecs } from "./services.js";

export class StackError extends Error {
  override name = "StackError";
}

const pidFile = (config: StackConfig, name: ServiceName) => join(config.stateDir, "run", `${name}.pid`);
const logFile = (config: StackConfig, name: ServiceName) => join(config.stateDir, "logs", `${name}.log`);

async function waitReady(config: StackConfig, spec: ServiceSpec, pid: number): Promise<void> {
  const deadline = Date.now() + spec.readyTimeoutMs;
  let lastError = "";
  while (Date.now() < deadline) {
    if (!alive(pid)) {
      throw new StackError(
        `${spec.name} exited during start-up. Last lines of ${logFile(config, spec.name)}:\n${tail(logFile(config, spec.name))}`,
      );
    }
    try {
      await spec.probe();
      return;
    } catch (error) {
      lastError = (error as Error).message;
    }
    await sleep(500);
  }
  throw new StackError(
    `${spec.name} did not become ready within ${spec.readyTimeoutMs / 1000}s (last probe: ${lastError}). ` +
      `Log: ${logFile(config, spec.name)}\n${tail(logFile(config, spec.name))}`,
  );
}

async function upOne(
  config: StackConfig,
  spec: ServiceSpec,
  log: (line: string) => void,
): Promise<"started" | "running"> {
  const record = readPid(pidFile(config, spec.name));
  if (isOurs(record)) {
    if (record.ports.join() !== spec.ports.join()) {
      throw new StackError(
        `${spec.name} is already running from this checkout on port(s) ${record.ports.join(", ")}, ` +
          `not ${spec.ports.join(", ")}. Run \`npm run stack:down\` first to change ports.`,
      );
    }
    await waitReady(config, spec, record.pid);
    return "running";
  }
  for (const port of spec.ports) {
    if (await portInUse(port)) {
      throw new StackError(
        `port ${port} (needed by ${spec.name}) is already taken by ${describeListener(port)}. ` +
          `Stop it, or pick another port with TESSERA_${spec.name.toUpperCase()}_PORT.`,
      );
    }
  }
  spec.fetch();
  const { command, args, env } = spec.prepare();
  const pid = startDetached({
    command,
    args,
    env,
    cwd: config.stateDir,
    logFile: logFile(config, spec.name),
    pidFile: pidFile(config, spec.name),
    ports: spec.ports,
  });
  log(`stack: ${spec.name} starting (pid ${pid}, ports ${spec.ports.join(", ")})`);
  try {
    await waitReady(config, spec, pid);
  } catch (error) {
    await stopProcess(pidFile(config, spec.name), 5000);
    throw error;
  }
  return "started";
}

export interface UpResult {
  env: Record<string, string>;
  started: ServiceName[];
  alreadyRunning: ServiceName[];
}

export async function up(only: readonly ServiceName[] = serviceNames, log = console.log): Promise<UpResult> {
  const config = loadConfig();
  for (const dir of ["run", "logs", "data", "conf"])
    mkdirSync(join(config.stateDir, dir), { recursive: true });
  const specs = serviceSpecs(config);
  // Downloads run one at a time (Maven's local repo is shared); start-ups run in parallel.
  for (const name of only) specs[name].fetch();
  const results = await Promise.allSettled(only.map((name) => upOne(config, specs[name], log)));
  const failures = results.flatMap((r) => (r.status === "rejected" ? [(r.reason as Error).message] : []));
  if (failures.length > 0) throw new StackError(failures.join("\n\n"));

  const env = connectionEnv(config);
  const lines = Object.entries(env).map(([key, value]) => `${key}=${value}`);
  writeFileSync(config.envFile, `# Written by scripts/stack (npm run stack:up)\n${lines.join("\n")}\n`);
  const started = only.filter((_, i) => (results[i] as PromiseFulfilledResult<string>).value === "started");
  const alreadyRunning = only.filter((name) => !started.includes(name));
  for (const name of alreadyRunning) log(`stack: ${name} already running`);
  log(`stack: ready (${only.join(", ")}); connection settings in ${config.envFile}`);
  return { env, started, alreadyRunning };
}

export async function down(only: readonly ServiceName[] = serviceNames, log = console.log): Promise<void> {
  const config = loadConfig();
  await Promise.all(
    only.map(async (name) => {
      const outcome = await stopProcess(pidFile(config, name));
      log(`stack: ${name} ${outcome}`);
    }),
  );
  if (only.length === serviceNames.length) rmSync(config.envFile, { force: true });
}

export async function status(): Promise<
  Array<{ name: ServiceName; pid?: number; ready: boolean; detail: string }>
> {
  const config = loadConfig();
  const specs = serviceSpecs(config);
  return Promise.all(
    serviceNames.map(async (name) => {
      const record = readPid(pidFile(config, name));
      if (!isOurs(record)) return { name, ready: false, detail: "not running" };
      try {
        await specs[name].probe();
        return { name, pid: record.pid, ready: true, detail: `ready on port ${specs[name].ports[0]}` };
      } catch (error) {
        return {
          name,
          pid: record.pid,
          ready: false,
          detail: `running, not answering: ${(error as Error).message}`,
        };
      }
    }),
  );
}

function parseOnly(args: string[]): ServiceName[] {
  const index = args.indexOf("--only");
  if (index < 0) return [...serviceNames];
  const names = (args[index + 1] ?? "").split(",").filter(Boolean);
  const unknown = names.filter((n) => !serviceNames.includes(n as ServiceName));
  if (names.length === 0 || unknown.length > 0) {
    throw new StackError(`--only takes a comma-separated list of ${serviceNames.join(", ")}`);
  }
  return names as ServiceName[];
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "up":
      await up(parseOnly(rest));
      return 0;
    case "down":
      await down(parseOnly(rest));
      return 0;
    case "status": {
      const rows = await status();
      for (const row of rows)
        console.log(`${row.name.padEnd(10)} ${String(row.pid ?? "-").padEnd(8)} ${row.detail}`);
      return rows.every((r) => r.ready) ? 0 : 1;
    }
    default:
      console.error("usage: stack.ts up|down|status [--only kafka,registry,redis,cassandra]");
      return 2;
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error) => {
      console.error(error instanceof StackError ? `stack: ${error.message}` : error);
      process.exit(1);
    },
  );
}
