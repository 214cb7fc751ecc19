/**
 * Shared helpers of the deployment tests: the repository root, YAML loading, rendering kustomize
 * overlays, and the pinned schema oracles in test/oracles/k8s/.venv (created by scripts/setup).
 * A missing tool fails the test with the command that installs it; nothing here skips.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments, parse as parseYaml } from "yaml";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const repoPath = (...parts: string[]) => join(repoRoot, ...parts);

/** Kubernetes version the manifests are validated against: the oldest we support and the newest pinned. */
export const kubernetesVersions = ["1.29.0", "1.37.0"];

// biome-ignore lint/suspicious/noExplicitAny: parsed YAML of every shape; the tests' assertions check it
export type Doc = Record<string, any>;

/** YAML with `<<` merge keys resolved, as docker compose reads it. */
export function readYaml(path: string): Doc {
  return parseYaml(readFileSync(path, "utf8"), { merge: true }) as Doc;
}

export function readYamlStream(text: string): Doc[] {
  return parseAllDocuments(text)
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(doc.errors.map((e) => e.message).join("; "));
      return doc.toJS() as Doc | null;
    })
    .filter((doc): doc is Doc => doc !== null);
}

const oracleDir = repoPath("test/oracles/k8s");
const oracleBin = (name: string) => join(oracleDir, ".venv/bin", name);

function requireOracle(): void {
  if (!existsSync(oracleBin("python")) || !existsSync(oracleBin("check-jsonschema"))) {
    throw new Error(
      `schema oracles missing: ${oracleDir}/.venv. Run scripts/setup (or: python3 -m venv ${oracleDir}/.venv && ${oracleDir}/.venv/bin/pip install -r ${oracleDir}/requirements.txt)`,
    );
  }
}

/** kubectl (≥ 1.27, kustomize v5 inside) or a standalone kustomize v5, whichever is on PATH. */
export function kustomizeCommand(): string[] {
  const has = (cmd: string) => spawnSync(cmd, ["version"], { stdio: "ignore" }).error === undefined;
  if (has("kustomize")) return ["kustomize", "build"];
  if (has("kubectl")) return ["kubectl", "kustomize"];
  throw new Error(
    "neither kubectl nor kustomize is installed: install kubectl ≥ 1.27 (https://kubernetes.io/docs/tasks/tools/) " +
      "or kustomize v5 (`go install sigs.k8s.io/kustomize/kustomize/v5@v5.5.0`, then put $(go env GOPATH)/bin on PATH)",
  );
}

export function kustomize(dir: string): string {
  const [cmd, ...args] = kustomizeCommand();
  return execFileSync(cmd!, [...args, dir], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

export interface K8sVerdict {
  kind: string;
  name: string;
  status: "valid" | "invalid" | "no-schema";
  error?: string;
}

/** Validates a YAML stream against kubernetes-validate's strict schemas for one Kubernetes version. */
export function validateK8s(yamlText: string, version: string): K8sVerdict[] {
  requireOracle();
  const out = execFileSync(oracleBin("python"), [join(oracleDir, "validate.py"), version, "--strict"], {
    input: yamlText,
    encoding: "utf8",
  });
  return out
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as K8sVerdict);
}

export interface SchemaVerdict {
  ok: boolean;
  errors: string[];
}

/** Validates a compose file against the Compose Specification schema that check-jsonschema vendors. */
export function validateCompose(file: string): SchemaVerdict {
  requireOracle();
  const run = spawnSync(
    oracleBin("check-jsonschema"),
    ["--builtin-schema", "vendor.compose-spec", "--output-format", "json", file],
    { encoding: "utf8" },
  );
  if (run.status !== 0 && run.status !== 1) throw new Error(`check-jsonschema failed: ${run.stderr}`);
  const report = JSON.parse(run.stdout) as {
    status: string;
    errors: Array<{ path: string; message: string; best_deep_match?: { path: string; message: string } }>;
    parse_errors?: Array<{ message: string }>;
  };
  const errors = [
    ...report.errors.map((e) => {
      const deep = e.best_deep_match ?? e;
      return `${deep.path}: ${deep.message}`;
    }),
    ...(report.parse_errors ?? []).map((e) => e.message),
  ];
  return { ok: report.status === "ok" && errors.length === 0, errors };
}
