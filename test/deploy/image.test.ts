/**
 * The container image, without a Docker engine: the Dockerfile copies every workspace manifest
 * (or `npm ci` fails in the build), pins its base image, copies only files that exist; the entry
 * script starts every program by name (run here against the built repository); the health-check
 * probe exits 0 only for a 2xx answer.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { repoPath } from "./support.js";

const dockerfile = readFileSync(repoPath("Dockerfile"), "utf8");
const instructions = dockerfile
  .replace(/\\\n/g, " ")
  .split("\n")
  .filter((line) => line.trim() && !line.trim().startsWith("#"));
const entrypoint = repoPath("deploy/docker/entrypoint.sh");
const probe = repoPath("deploy/docker/probe.mjs");

const workspaces = (
  JSON.parse(readFileSync(repoPath("package.json"), "utf8")) as { workspaces: string[] }
).workspaces
  .map((glob) => glob.replace(/\/\*$/, ""))
  .flatMap((dir) => readdirSync(repoPath(dir)).map((name) => `${dir}/${name}`))
  .filter((dir) => existsSync(repoPath(dir, "package.json")));
const servicePrograms = workspaces
  .filter(
    (dir) =>
      dir.startsWith("services/") && existsSync(repoPath(dir, "src/main.ts")) && dir !== "services/cli",
  )
  .map((dir) => dir.slice("services/".length));

describe("Dockerfile", () => {
  it("copies every workspace's package.json before npm ci", () => {
    const copies = instructions.filter((line) => line.startsWith("COPY ") && !line.includes("--from"));
    const npmCi = instructions.findIndex((line) => line.includes("npm ci"));
    const before = copies.filter((line) => instructions.indexOf(line) < npmCi).join("\n");
    for (const dir of workspaces) expect(before, dir).toContain(`${dir}/package.json`);
    expect(before).toContain("package-lock.json");
  });

  it("builds with tsc -b, prunes dev dependencies, and pins the Node 20 base image", () => {
    expect(dockerfile).toMatch(/RUN npx tsc -b && npm prune --omit=dev/);
    const base = /^ARG NODE_IMAGE=(.+)$/m.exec(dockerfile)?.[1];
    expect(base).toMatch(/^node:20\.\d+\.\d+-[a-z]+-slim$/);
    const engines = (
      JSON.parse(readFileSync(repoPath("package.json"), "utf8")) as { engines: { node: string } }
    ).engines;
    const [major, minor] = base!.slice("node:".length).split(".").map(Number);
    const [needMajor, needMinor] = engines.node.replace(">=", "").split(".").map(Number);
    expect(major === needMajor && minor! >= needMinor!, `${base} vs engines ${engines.node}`).toBe(true);
  });

  it("copies only paths that exist, and runs as the unprivileged node user", () => {
    for (const line of instructions.filter((l) => l.startsWith("COPY ") && !l.includes("--from"))) {
      const sources = line.split(/\s+/).slice(1, -1);
      for (const source of sources) expect(existsSync(repoPath(source)), line).toBe(true);
    }
    expect(instructions.at(-4)).toBe("USER node");
    expect(dockerfile).toContain('ENTRYPOINT ["/app/deploy/docker/entrypoint.sh"]');
  });

  it("puts an executable tessera launcher on PATH (compose's init job calls `tessera`)", () => {
    const link = /ln -s \/app\/(\S+) \/usr\/local\/bin\/tessera/.exec(dockerfile)?.[1];
    expect(link).toBe("services/cli/bin/tessera.js");
    expect(statSync(repoPath(link!)).mode & 0o111, `${link} is not executable`).not.toBe(0);
    expect(readFileSync(repoPath(link!), "utf8")).toMatch(/^#!\/usr\/bin\/env node\n/);
  });

  it("keeps the build context small but keeps what the build needs", () => {
    const ignored = readFileSync(repoPath(".dockerignore"), "utf8")
      .split("\n")
      .filter((l) => l && !l.startsWith("#"));
    expect(ignored).toEqual(expect.arrayContaining(["**/node_modules", "**/dist", ".git"]));
    for (const needed of ["libs", "services", "schemas", "deploy/docker", "package-lock.json"]) {
      expect(ignored, needed).not.toContain(needed);
    }
  });
});

describe("entrypoint.sh", () => {
  const run = (...args: string[]) => spawnSync(entrypoint, args, { encoding: "utf8", timeout: 30_000 });

  it("knows every service that has a process entry", () => {
    const script = readFileSync(entrypoint, "utf8");
    expect(servicePrograms.sort()).toEqual([
      "archiver",
      "drift-worker",
      "feature-server",
      "stream-processor",
    ]);
    for (const program of servicePrograms) expect(script).toContain(program);
  });

  it("runs the CLI by name", () => {
    const result = run("tessera", "--help");
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    expect(result.stdout).toContain("Usage: tessera");
    expect(result.stdout).toMatch(/topics/);
  });

  it.each(["stream-processor", "archiver", "feature-server", "drift-worker"])(
    "starts %s's built entry and hands it the arguments",
    (program) => {
      expect(
        existsSync(repoPath(`services/${program}/dist/main.js`)),
        `services/${program}/dist/main.js: run npm run build first`,
      ).toBe(true);
      // A config file that does not exist: the service itself must answer, naming the file (exit 2, a config error).
      const result = run(program, "--config", "/nonexistent/tessera.yaml");
      expect(result.stderr).toContain("/nonexistent/tessera.yaml");
      expect(result.status).toBe(2);
    },
  );

  it("refuses an unknown program with the list of known ones", () => {
    const result = run("stream-procesor");
    expect(result.status).toBe(64);
    expect(result.stderr).toContain('unknown program "stream-procesor"');
    expect(result.stderr).toContain("stream-processor|archiver|feature-server|drift-worker|tessera");
  });
});

describe("probe.mjs", () => {
  let server: Server;
  let base: string;
  beforeAll(async () => {
    server = createServer((request, response) => {
      response.statusCode = request.url === "/readyz" ? 200 : 503;
      response.end(request.url === "/readyz" ? "ready" : "not ready");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
  // Async spawn: the test server runs in this process and must keep answering.
  const probeExit = (url: string) =>
    new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [probe, url, "1000"]);
      let stderr = "";
      child.stderr.on("data", (chunk) => {
        stderr += chunk;
      });
      child.on("close", (code) => resolve({ code, stderr }));
    });

  it("exits 0 on 2xx, 1 on 503 or a closed port, saying why", async () => {
    expect((await probeExit(`${base}/readyz`)).code).toBe(0);
    const notReady = await probeExit(`${base}/other`);
    expect(notReady.code).toBe(1);
    expect(notReady.stderr).toContain("HTTP 503");
    // A port that was just free: nothing listens there.
    const spare = createServer();
    await new Promise<void>((resolve) => spare.listen(0, "127.0.0.1", resolve));
    const port = (spare.address() as AddressInfo).port;
    await new Promise<void>((resolve) => spare.close(() => resolve()));
    const closed = await probeExit(`http://127.0.0.1:${port}/readyz`);
    expect(closed.code).toBe(1);
    expect(closed.stderr).toContain("ECONNREFUSED");
  });
});
