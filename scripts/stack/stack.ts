/**
 * The native local stack: Kafka (KRaft), Apicurio Registry (Confluent API), Redis and Cassandra,
 * started from Maven Central jars and Debian's redis-server on 127.0.0.1. No Docker needed.
 *
 *   tsx scripts/stack/stack.ts up [--only kafka,redis]   start (idempotent), wait until ready
 *   tsx scripts/stack/stack.ts up --only kafka-cluster,redis-cluster,s3   the scale-out servers
 *   tsx scripts/stack/stack.ts down [--only …]           stop exactly what `up` started
 *   tsx scripts/stack/stack.ts status                    what runs, where, and whether it answers
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  allServiceNames,
  clusterEnv,
  clusterNames,
  connectionEnv,
  loadConfig,
  type ServiceName,
  type StackConfig,
  serviceNames,
} from "./config.js";
import {
  alive,
  describeListener,
  isOurs,
  type PidRecord,
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

const pidFile = (config: StackConfig, id: string) => join(config.stateDir, "run", `${id}.pid`);
const logFile = (config: StackConfig, id: string) => join(config.stateDir, "logs", `${id}.log`);

/** The pid records of a service's members (undefined where none of ours runs). */
function memberRecords(config: StackConfig, spec: ServiceSpec): (PidRecord | undefined)[] {
  return spec.members.map((m) => {
    const record = readPid(pidFile(config, m.id));
    return isOurs(record) ? record : undefined;
  });
}

/** Every member of the service runs (from this checkout). */
export function isRunning(name: ServiceName): boolean {
  const config = loadConfig();
  return memberRecords(config, serviceSpecs(config)[name]).every((r) => r !== undefined);
}

/** Pids of the service's members by member id (a member that does not run is left out). */
export function memberPids(name: ServiceName): Map<string, number> {
  const config = loadConfig();
  const spec = serviceSpecs(config)[name];
  const records = memberRecords(config, spec);
  return new Map(spec.members.flatMap((m, i) => (records[i] ? [[m.id, records[i]!.pid] as const] : [])));
}

/** Retries `attempt` until it resolves; fails early when a member exits, with its log's last lines. */
async function waitFor(
  config: StackConfig,
  spec: ServiceSpec,
  pids: Map<string, number>,
  attempt: () => Promise<void>,
): Promise<void> {
  const deadline = Date.now() + spec.readyTimeoutMs;
  let lastError = "";
  while (Date.now() < deadline) {
    for (const [id, pid] of pids) {
      if (!alive(pid)) {
        throw new StackError(
          `${id} exited during start-up. Last lines of ${logFile(config, id)}:\n${tail(logFile(config, id))}`,
        );
      }
    }
    try {
      await attempt();
      return;
    } catch (error) {
      lastError = (error as Error).message;
    }
    await sleep(500);
  }
  const logs = [...pids.keys()].map((id) => `${logFile(config, id)}:\n${tail(logFile(config, id), 10)}`);
  throw new StackError(
    `${spec.name} did not become ready within ${spec.readyTimeoutMs / 1000}s (last probe: ${lastError}).\n${logs.join("\n")}`,
  );
}

/**
 * Starts the members of a service that do not run (all of them, or the ones a fault test killed),
 * then waits until the service answers. "running" when every member already ran.
 */
async function upOne(
  config: StackConfig,
  spec: ServiceSpec,
  log: (line: string) => void,
): Promise<"started" | "running"> {
  const records = memberRecords(config, spec);
  spec.members.forEach((member, i) => {
    const record = records[i];
    if (record && record.ports.join() !== member.ports.join()) {
      throw new StackError(
        `${member.id} is already running from this checkout on port(s) ${record.ports.join(", ")}, ` +
          `not ${member.ports.join(", ")}. Run \`npm run stack:down\` first to change ports.`,
      );
    }
  });
  const pids = new Map(
    spec.members.flatMap((m, i) => (records[i] ? [[m.id, records[i]!.pid] as const] : [])),
  );
  const missing = spec.members.filter((_, i) => records[i] === undefined);
  if (missing.length === 0) {
    await waitFor(config, spec, pids, spec.probe);
    return "running";
  }
  for (const port of missing.flatMap((m) => m.ports)) {
    if (await portInUse(port)) {
      throw new StackError(
        `port ${port} (needed by ${spec.name}) is already taken by ${describeListener(port)}. ` +
          `Stop it, or pick other ports with ${spec.portVariable}.`,
      );
    }
  }
  spec.fetch();
  const started: string[] = [];
  try {
    for (const member of missing) {
      const { command, args, env } = member.prepare();
      const pid = startDetached({
        command,
        args,
        env,
        cwd: config.stateDir,
        logFile: logFile(config, member.id),
        pidFile: pidFile(config, member.id),
        ports: member.ports,
      });
      started.push(member.id);
      pids.set(member.id, pid);
      log(`stack: ${member.id} starting (pid ${pid}, ports ${member.ports.join(", ")})`);
    }
    if (spec.bootstrap) await waitFor(config, spec, pids, spec.bootstrap);
    await waitFor(config, spec, pids, spec.probe);
  } catch (error) {
    await Promise.all(started.map((id) => stopProcess(pidFile(config, id), 5000)));
    throw error;
  }
  return missing.length === spec.members.length ? "started" : "running";
}

/** stack.env: the single-node settings (as always), plus those of every cluster that runs now. */
function writeEnvFile(config: StackConfig): Record<string, string> {
  const specs = serviceSpecs(config);
  const env = { ...connectionEnv(config) };
  for (const name of clusterNames) {
    if (memberRecords(config, specs[name]).every((r) => r !== undefined))
      Object.assign(env, clusterEnv(config, name));
  }
  const lines = Object.entries(env).map(([key, value]) => `${key}=${value}`);
  writeFileSync(config.envFile, `# Written by scripts/stack (npm run stack:up)\n${lines.join("\n")}\n`);
  return env;
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

  const env = writeEnvFile(config);
  const started = only.filter((_, i) => (results[i] as PromiseFulfilledResult<string>).value === "started");
  const alreadyRunning = only.filter((name) => !started.includes(name));
  for (const name of alreadyRunning) log(`stack: ${name} already running`);
  log(`stack: ready (${only.join(", ")}); connection settings in ${config.envFile}`);
  return { env, started, alreadyRunning };
}

/** Stops exactly the processes `up` started (without `--only`: every service, clusters included). */
export async function down(only: readonly ServiceName[] = allServiceNames, log = console.log): Promise<void> {
  const config = loadConfig();
  const specs = serviceSpecs(config);
  await Promise.all(
    only.map(async (name) => {
      const outcomes = await Promise.all(specs[name].members.map((m) => stopProcess(pidFile(config, m.id))));
      log(`stack: ${name} ${outcomes.includes("stopped") ? "stopped" : "not running"}`);
    }),
  );
  const anyRunning = allServiceNames.some((name) => memberRecords(config, specs[name]).some(Boolean));
  if (!anyRunning) rmSync(config.envFile, { force: true });
  else if (existsSync(config.envFile)) writeEnvFile(config);
}

export async function status(): Promise<
  Array<{ name: ServiceName; pid?: number; ready: boolean; detail: string }>
> {
  const config = loadConfig();
  const specs = serviceSpecs(config);
  // Clusters are listed only once started: they are not part of the default stack.
  const shown = allServiceNames.filter(
    (name) =>
      (serviceNames as readonly ServiceName[]).includes(name) ||
      memberRecords(config, specs[name]).some(Boolean),
  );
  return Promise.all(
    shown.map(async (name) => {
      const spec = specs[name];
      const records = memberRecords(config, spec);
      const running = records.filter((r) => r !== undefined);
      if (running.length === 0) return { name, ready: false, detail: "not running" };
      const pid = running[0]!.pid;
      const where = `port${spec.members.length > 1 ? "s" : ""} ${spec.members.map((m) => m.ports[0]).join(", ")}`;
      if (running.length < records.length) {
        const down = spec.members.filter((_, i) => !records[i]).map((m) => m.id);
        return {
          name,
          pid,
          ready: false,
          detail: `${down.join(", ")} not running (\`stack:up --only ${name}\` restarts)`,
        };
      }
      try {
        await spec.probe();
        return { name, pid, ready: true, detail: `ready on ${where}` };
      } catch (error) {
        return { name, pid, ready: false, detail: `running, not answering: ${(error as Error).message}` };
      }
    }),
  );
}

function parseOnly(args: string[], fallback: readonly ServiceName[]): ServiceName[] {
  const index = args.indexOf("--only");
  if (index < 0) return [...fallback];
  const names = (args[index + 1] ?? "").split(",").filter(Boolean);
  const unknown = names.filter((n) => !allServiceNames.includes(n as ServiceName));
  if (names.length === 0 || unknown.length > 0) {
    throw new StackError(`--only takes a comma-separated list of ${allServiceNames.join(", ")}`);
  }
  return names as ServiceName[];
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "up":
      await up(parseOnly(rest, serviceNames));
      return 0;
    case "down":
      await down(parseOnly(rest, allServiceNames));
      return 0;
    case "status": {
      const rows = await status();
      for (const row of rows)
        console.log(`${row.name.padEnd(14)} ${String(row.pid ?? "-").padEnd(8)} ${row.detail}`);
      return rows.every((r) => r.ready) ? 0 : 1;
    }
    default:
      console.error(`usage: stack.ts up|down|status [--only ${allServiceNames.join(",")}]`);
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
