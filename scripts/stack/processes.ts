import { execFileSync, spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";

/**
 * A pid file records the pid, the kernel's start time of that process (so a reused pid is not
 * mistaken for ours; redis-server rewrites its title, so the command line cannot tell) and the
 * ports it was started with.
 */
export interface PidRecord {
  pid: number;
  startTime: string;
  ports: number[];
}

export function readPid(pidFile: string): PidRecord | undefined {
  if (!existsSync(pidFile)) return undefined;
  try {
    return JSON.parse(readFileSync(pidFile, "utf8")) as PidRecord;
  } catch {
    return undefined;
  }
}

/** Field 22 of /proc/<pid>/stat: start time in clock ticks since boot. */
function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces; fields after its closing parenthesis are plain.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

/** True only for a live process that is still the one we started. */
export function isOurs(record: PidRecord | undefined): record is PidRecord {
  return record !== undefined && processStartTime(record.pid) === record.startTime;
}

export function startDetached(opts: {
  command: string;
  args: string[];
  cwd: string;
  logFile: string;
  pidFile: string;
  ports: number[];
  env?: Record<string, string>;
}): number {
  const log = openSync(opts.logFile, "a");
  const child = spawn(opts.command, opts.args, {
    cwd: opts.cwd,
    // Own process group: `down` signals the group, so helper children go too.
    detached: true,
    stdio: ["ignore", log, log],
    env: { ...process.env, ...opts.env },
  });
  closeSync(log);
  if (child.pid === undefined) throw new Error(`could not start ${opts.command}`);
  child.unref();
  const record: PidRecord = {
    pid: child.pid,
    startTime: processStartTime(child.pid) ?? "",
    ports: opts.ports,
  };
  writeFileSync(opts.pidFile, JSON.stringify(record));
  return child.pid;
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM the process group, then SIGKILL what is left after the grace period. */
export async function stopProcess(pidFile: string, graceMs = 20_000): Promise<"stopped" | "not running"> {
  const record = readPid(pidFile);
  if (!isOurs(record)) {
    rmSync(pidFile, { force: true });
    return "not running";
  }
  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-record.pid, signal);
    } catch {
      try {
        process.kill(record.pid, signal);
      } catch {
        /* already gone */
      }
    }
  };
  signalGroup("SIGTERM");
  const deadline = Date.now() + graceMs;
  while (alive(record.pid) && Date.now() < deadline) await sleep(200);
  if (alive(record.pid)) signalGroup("SIGKILL");
  while (alive(record.pid)) await sleep(100);
  rmSync(pidFile, { force: true });
  return "stopped";
}

export function portInUse(port: number): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    socket.setTimeout(1000);
    socket.once("connect", () => {
      socket.destroy();
      resolvePromise(true);
    });
    socket.once("timeout", () => {
      socket.destroy();
      resolvePromise(true);
    });
    socket.once("error", () => resolvePromise(false));
  });
}

/** Name the listener on a port, for the error message ("pid 123 redis-server"). */
export function describeListener(port: number): string {
  try {
    const out = execFileSync("ss", ["-Hltnp", `sport = :${port}`], { encoding: "utf8" });
    const match = out.match(/users:\(\("([^"]+)",pid=(\d+)/);
    if (match) return `pid ${match[2]} (${match[1]})`;
  } catch {
    /* ss missing: fall through */
  }
  return "another process";
}

export function tail(file: string, lines = 25): string {
  if (!existsSync(file)) return "(no log)";
  return readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
