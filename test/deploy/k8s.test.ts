/**
 * k8s/: render the base and both overlays with kustomize, validate every object against the pinned
 * strict Kubernetes JSON schemas (kubernetes-validate, oldest and newest supported versions) and the
 * CRDs against their own models (@kubernetes-models: KEDA, Prometheus Operator); then the checks no
 * schema makes: selectors that select, ports that exist, probes, budgets, resources, references.
 */

import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ScaledObject } from "@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject";
import { PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";
import cassandra from "cassandra-driver";
import { describe, expect, it } from "vitest";
import { parse as parseYaml, stringify } from "yaml";
import { cassandraContactPoint, services, uniqueName } from "../support/index.js";
import { type Doc, kubernetesVersions, kustomize, readYamlStream, repoPath, validateK8s } from "./support.js";

const crdModels: Record<string, (doc: Doc) => void> = {
  ScaledObject: (doc) => new ScaledObject(doc as never).validate(),
  ServiceMonitor: (doc) => new ServiceMonitor(doc as never).validate(),
  PrometheusRule: (doc) => new PrometheusRule(doc as never).validate(),
};
/** Secrets an overlay expects to exist already (created out of band; docs/deploy.md). */
const externalSecrets: Record<string, string[]> = {
  base: ["tessera-api-keys"],
  dev: [],
  prod: ["tessera-api-keys"],
};
const programs = ["stream-processor", "archiver", "feature-server", "drift-worker", "tessera"];

const targets = { base: "k8s/base", dev: "k8s/overlays/dev", prod: "k8s/overlays/prod" } as const;
type Target = keyof typeof targets;
const rendered = new Map<Target, { text: string; objects: Doc[] }>();

const of = (objects: Doc[], kind: string) => objects.filter((o) => o["kind"] === kind);
const named = (objects: Doc[], kind: string, name: string) =>
  objects.find((o) => o["kind"] === kind && o["metadata"]["name"] === name);
const matches = (selector: Record<string, string> | undefined, labels: Record<string, string> = {}) =>
  Object.entries(selector ?? {}).every(([k, v]) => labels[k] === v);
const podSpec = (d: Doc) => d["spec"]["template"]["spec"] as Doc;
const containersOf = (d: Doc): Doc[] => [
  ...(podSpec(d)["initContainers"] ?? []),
  ...podSpec(d)["containers"],
];
const imagePinned = (image: string) => {
  const tag = image.split("/").pop()!.split(":")[1];
  return tag !== undefined && tag !== "latest";
};

/** Problems a schema cannot see, across the objects of one rendered overlay. */
function k8sProblems(objects: Doc[], external: string[] = []): string[] {
  const problems: string[] = [];
  const deployments = of(objects, "Deployment");
  const podLabels = (d: Doc) => d["spec"]["template"]["metadata"]["labels"] as Record<string, string>;
  const selecting = (selector: Record<string, string> | undefined) =>
    deployments.filter((d) => matches(selector, podLabels(d)));
  const portNames = (d: Doc) =>
    new Set(podSpec(d)["containers"].flatMap((c: Doc) => (c["ports"] ?? []).map((p: Doc) => p["name"])));
  const exists = (kind: string, name: string) => named(objects, kind, name) !== undefined;

  for (const d of deployments) {
    const name = d["metadata"]["name"];
    if (!matches(d["spec"]["selector"]["matchLabels"], podLabels(d))) {
      problems.push(`Deployment ${name}: selector does not match its pod template`);
    }
    for (const c of containersOf(d)) {
      const where = `Deployment ${name} container ${c["name"]}`;
      for (const kind of ["requests", "limits"]) {
        for (const resource of ["cpu", "memory"]) {
          if (!c["resources"]?.[kind]?.[resource]) problems.push(`${where}: no ${kind}.${resource}`);
        }
      }
      if (!imagePinned(c["image"])) problems.push(`${where}: image ${c["image"]} is not pinned`);
      if (c["securityContext"]?.["allowPrivilegeEscalation"] !== false) {
        problems.push(`${where}: allowPrivilegeEscalation is not false`);
      }
      for (const source of c["envFrom"] ?? []) {
        const ref = source["configMapRef"] ?? source["secretRef"];
        const kind = source["configMapRef"] ? "ConfigMap" : "Secret";
        if (!ref["optional"] && !exists(kind, ref["name"]))
          problems.push(`${where}: envFrom ${kind} ${ref["name"]} missing`);
      }
    }
    for (const c of podSpec(d)["containers"] as Doc[]) {
      const where = `Deployment ${name} container ${c["name"]}`;
      for (const probe of ["livenessProbe", "readinessProbe"]) {
        const port = c[probe]?.["httpGet"]?.["port"];
        if (!port) problems.push(`${where}: no ${probe}`);
        else if (typeof port === "string" && !portNames(d).has(port)) {
          problems.push(`${where}: ${probe} port ${port} is not a container port`);
        }
      }
      const args = (c["args"] ?? []) as string[];
      if (!programs.includes(args[0]!))
        problems.push(`${where}: args start with ${args[0]}, not a Tessera program`);
      const config = args[args.indexOf("--config") + 1];
      if (args.includes("--config")) {
        const mount = (c["volumeMounts"] as Doc[]).find((m) => config!.startsWith(`${m["mountPath"]}/`));
        const volume = podSpec(d)["volumes"].find((v: Doc) => v["name"] === mount?.["name"]);
        const map = volume?.["configMap"] && named(objects, "ConfigMap", volume["configMap"]["name"]);
        if (!map?.["data"]?.[config!.slice(mount!["mountPath"].length + 1)]) {
          problems.push(`${where}: --config ${config} is not a file of a mounted ConfigMap`);
        }
      }
    }
    for (const v of podSpec(d)["volumes"] ?? []) {
      if (v["configMap"] && !exists("ConfigMap", v["configMap"]["name"])) {
        problems.push(`Deployment ${name}: volume ConfigMap ${v["configMap"]["name"]} missing`);
      }
      const secret = v["secret"]?.["secretName"];
      if (secret && !exists("Secret", secret) && !external.includes(secret)) {
        problems.push(`Deployment ${name}: volume Secret ${secret} missing`);
      }
      const claim = v["persistentVolumeClaim"]?.["claimName"];
      if (claim && !exists("PersistentVolumeClaim", claim))
        problems.push(`Deployment ${name}: PVC ${claim} missing`);
    }
    const budgets = of(objects, "PodDisruptionBudget").filter((p) =>
      matches(p["spec"]["selector"]["matchLabels"], podLabels(d)),
    );
    if (budgets.length !== 1)
      problems.push(`Deployment ${name}: ${budgets.length} PodDisruptionBudgets, want 1`);
  }
  for (const s of of(objects, "Service")) {
    const selected = selecting(s["spec"]["selector"]);
    if (selected.length === 0) problems.push(`Service ${s["metadata"]["name"]}: selects no pods`);
    for (const p of s["spec"]["ports"]) {
      if (typeof p["targetPort"] === "string" && !selected.some((d) => portNames(d).has(p["targetPort"]))) {
        problems.push(`Service ${s["metadata"]["name"]}: targetPort ${p["targetPort"]} is no container port`);
      }
    }
  }
  for (const p of of(objects, "PodDisruptionBudget")) {
    if (selecting(p["spec"]["selector"]["matchLabels"]).length === 0) {
      problems.push(`PodDisruptionBudget ${p["metadata"]["name"]}: selects no pods`);
    }
  }
  for (const n of of(objects, "NetworkPolicy")) {
    const selected = selecting(n["spec"]["podSelector"]["matchLabels"]);
    if (selected.length === 0) problems.push(`NetworkPolicy ${n["metadata"]["name"]}: selects no pods`);
    for (const rule of n["spec"]["ingress"] ?? []) {
      for (const { port } of rule["ports"] ?? []) {
        if (typeof port === "string" && !selected.some((d) => portNames(d).has(port))) {
          problems.push(
            `NetworkPolicy ${n["metadata"]["name"]}: port ${port} is no port of the selected pods`,
          );
        }
      }
    }
  }
  const scaled = new Map<string, string>();
  for (const h of of(objects, "HorizontalPodAutoscaler")) {
    const target = h["spec"]["scaleTargetRef"]["name"];
    if (!exists("Deployment", target))
      problems.push(`HorizontalPodAutoscaler ${h["metadata"]["name"]}: no Deployment ${target}`);
    scaled.set(target, "HorizontalPodAutoscaler");
  }
  for (const s of of(objects, "ScaledObject")) {
    const target = s["spec"]["scaleTargetRef"]["name"];
    if (!exists("Deployment", target))
      problems.push(`ScaledObject ${s["metadata"]["name"]}: no Deployment ${target}`);
    if (scaled.has(target)) problems.push(`Deployment ${target}: scaled by both an HPA and KEDA`);
    scaled.set(target, "ScaledObject");
  }
  for (const [target, by] of scaled) {
    // A fixed count would be re-applied on every `kubectl apply`, fighting the autoscaler.
    if (named(objects, "Deployment", target)?.["spec"]["replicas"] !== undefined) {
      problems.push(`Deployment ${target}: sets spec.replicas but its ${by} owns the count`);
    }
  }
  for (const m of of(objects, "ServiceMonitor")) {
    const services = of(objects, "Service").filter((s) =>
      matches(m["spec"]["selector"]["matchLabels"], s["metadata"]["labels"]),
    );
    if (services.length === 0) problems.push(`ServiceMonitor ${m["metadata"]["name"]}: selects no Service`);
    const ports = new Set(services.flatMap((s) => s["spec"]["ports"].map((p: Doc) => p["name"])));
    for (const e of m["spec"]["endpoints"]) {
      if (!ports.has(e["port"]))
        problems.push(`ServiceMonitor ${m["metadata"]["name"]}: no Service port ${e["port"]}`);
    }
  }
  return problems;
}

/** Renders a target once; called inside each test so a missing kubectl fails every test that needs it. */
function render(target: Target): { text: string; objects: Doc[] } {
  let done = rendered.get(target);
  if (!done) {
    const text = kustomize(repoPath(targets[target]));
    done = { text, objects: readYamlStream(text) };
    rendered.set(target, done);
  }
  return done;
}

describe.each(Object.keys(targets) as Target[])("k8s %s", (target) => {
  it.each(kubernetesVersions)("every object is valid against the strict Kubernetes %s schemas", (version) => {
    const { text, objects } = render(target);
    const verdicts = validateK8s(text, version);
    expect(verdicts).toHaveLength(objects.length);
    expect(verdicts.filter((v) => v.status === "invalid")).toEqual([]);
    // Only custom resources lack a core schema; they are checked against their own models below.
    const noSchema = [...new Set(verdicts.filter((v) => v.status === "no-schema").map((v) => v.kind))];
    expect(noSchema.filter((kind) => !(kind in crdModels))).toEqual([]);
  });

  it("custom resources are valid against their CRD models", () => {
    for (const doc of render(target).objects.filter((o) => o["kind"] in crdModels)) {
      expect(() => crdModels[doc["kind"]]!(doc), `${doc["kind"]} ${doc["metadata"]["name"]}`).not.toThrow();
    }
  });

  it("selectors select, ports exist, every container has probes and resources, every reference resolves", () => {
    expect(k8sProblems(render(target).objects, externalSecrets[target])).toEqual([]);
  });
});

describe("k8s validation catches mistakes", () => {
  it("the strict schemas reject a misspelt field and a wrong type", () => {
    const objects = structuredClone(render("dev").objects);
    const deployment = named(objects, "Deployment", "feature-server")!;
    const container = podSpec(deployment)["containers"][0];
    container["livenessProbes"] = container["livenessProbe"];
    named(objects, "Service", "feature-server")!["spec"]["ports"][0]["port"] = "8080";
    const verdicts = validateK8s(objects.map((o) => stringify(o)).join("---\n"), "1.37.0");
    const invalid = verdicts.filter((v) => v.status === "invalid");
    expect(invalid.map((v) => `${v.kind}/${v.name}`).sort()).toEqual([
      "Deployment/feature-server",
      "Service/feature-server",
    ]);
    expect(invalid.map((v) => v.error).join("\n")).toContain("livenessProbes");
  });

  it("the CRD models reject a bad ScaledObject and a bad ServiceMonitor", () => {
    const objects = structuredClone(render("prod").objects);
    const scaledObject = named(objects, "ScaledObject", "stream-processor")!;
    scaledObject["spec"]["maxReplicaCount"] = "twelve";
    expect(() => crdModels["ScaledObject"]!(scaledObject)).toThrow(/maxReplicaCount/);
    const monitor = named(objects, "ServiceMonitor", "tessera")!;
    monitor["spec"]["endpoints"][0]["interval"] = "15 seconds";
    expect(() => crdModels["ServiceMonitor"]!(monitor)).toThrow(/interval/);
  });

  it("the cross-reference check finds broken selectors, ports, probes and references", () => {
    const objects = structuredClone(render("prod").objects);
    named(objects, "Service", "drift-worker")!["spec"]["selector"]["app.kubernetes.io/name"] = "drift-wroker";
    const processor = podSpec(named(objects, "Deployment", "stream-processor")!);
    delete processor["containers"][0]["readinessProbe"];
    processor["initContainers"][0]["image"] = "cassandra:latest";
    podSpec(named(objects, "Deployment", "archiver")!)["containers"][0]["args"][2] =
      "/etc/tessera/archiver.yml";
    named(objects, "ServiceMonitor", "tessera")!["spec"]["endpoints"][0]["port"] = "prometheus";
    named(objects, "Deployment", "feature-server")!["spec"]["replicas"] = 3;
    expect(k8sProblems(objects, externalSecrets.prod)).toEqual(
      expect.arrayContaining([
        "Service drift-worker: selects no pods",
        "Deployment stream-processor container stream-processor: no readinessProbe",
        "Deployment stream-processor container cassandra-keyspace: image cassandra:latest is not pinned",
        "Deployment archiver container archiver: --config /etc/tessera/archiver.yml is not a file of a mounted ConfigMap",
        "ServiceMonitor tessera: no Service port prometheus",
        "Deployment feature-server: sets spec.replicas but its HorizontalPodAutoscaler owns the count",
      ]),
    );
    // The API key Secret is external in prod; left undeclared, the check reports it.
    expect(k8sProblems(objects, [])).toContain(
      "Deployment feature-server: volume Secret tessera-api-keys missing",
    );
  });
});

describe("k8s overlays", () => {
  const configOf = (objects: Doc[], file: string) => {
    const map = of(objects, "ConfigMap").find((m) => m["metadata"]["name"].startsWith("tessera-config"))!;
    return parseYaml(map["data"][file]) as Doc;
  };
  const connections = (objects: Doc[]) =>
    of(objects, "ConfigMap").find((m) => m["metadata"]["name"].startsWith("tessera-connections"))![
      "data"
    ] as Record<string, string>;

  it("dev runs one replica of everything, with a generated API key Secret", () => {
    const { objects } = render("dev");
    for (const d of of(objects, "Deployment")) {
      if (d["metadata"]["name"] !== "feature-server")
        expect(d["spec"]["replicas"], d["metadata"]["name"]).toBe(1);
    }
    expect(named(objects, "HorizontalPodAutoscaler", "feature-server")!["spec"]["minReplicas"]).toBe(1);
    expect(of(objects, "Secret").map((s) => s["metadata"]["name"])).toEqual([
      expect.stringMatching(/^tessera-api-keys-/),
    ]);
    expect(of(objects, "ScaledObject")).toEqual([]);
    expect(new Set(objects.map((o) => o["metadata"]["namespace"] ?? o["metadata"]["name"]))).toEqual(
      new Set(["tessera-dev"]),
    );
  });

  it("prod stores tiles in Cassandra with replication factor 3 and creates topics with replication factor 3", () => {
    const { objects } = render("prod");
    const processor = configOf(objects, "stream-processor.yaml");
    const server = configOf(objects, "feature-server.yaml");
    expect(processor["store"]).toMatchObject({ kind: "cassandra" });
    expect(server["store"]).toEqual(processor["store"]);
    // Whichever Cassandra client starts first creates the keyspace: each must create it with RF 3.
    const clients = of(objects, "Deployment").filter((d) => {
      const args = podSpec(d)["containers"][0]["args"] as string[];
      return configOf(objects, args[2]!.replace("/etc/tessera/", ""))["store"]?.["kind"] === "cassandra";
    });
    expect(clients.map((d) => d["metadata"]["name"]).sort()).toEqual(["feature-server", "stream-processor"]);
    for (const d of clients) {
      const keyspace = (podSpec(d)["initContainers"] as Doc[]).find(
        (c) => c["name"] === "cassandra-keyspace",
      );
      expect(keyspace, d["metadata"]["name"]).toBeDefined();
      const statement = keyspace!["args"].join(" ");
      expect(statement).toContain(`CREATE KEYSPACE IF NOT EXISTS ${processor["store"]["keyspace"]} `);
      expect(statement).toMatch(/'NetworkTopologyStrategy', '\$\{CASSANDRA_LOCAL_DC\}': 3\}/);
    }
    expect(connections(objects)["CASSANDRA_CONTACT_POINTS"]!.split(",")).toHaveLength(3);
    const inits = podSpec(named(objects, "Deployment", "stream-processor")!)["initContainers"] as Doc[];
    const topics = inits.find((c) => c["name"] === "create-topics")!["args"] as string[];
    expect(topics[topics.indexOf("--replication-factor") + 1]).toBe("3");
    expect(topics[topics.indexOf("--min-insync-replicas") + 1]).toBe("2");
  });

  it("prod's keyspace init container runs a statement Cassandra accepts, giving 3 replicas in the local DC", async () => {
    const init = (
      podSpec(named(render("prod").objects, "Deployment", "feature-server")!)["initContainers"] as Doc[]
    ).find((c) => c["name"] === "cassandra-keyspace")!;
    // Run the container's own shell line with a stand-in cqlsh that prints what it would send.
    const bin = mkdtempSync(join(tmpdir(), "tessera-cqlsh-"));
    writeFileSync(join(bin, "cqlsh"), '#!/bin/sh\nprintf "%s\\n" "$@"\n', { mode: 0o755 });
    const { CASSANDRA_CONTACT_POINTS, CASSANDRA_LOCAL_DC } = services();
    expect(init["command"]).toEqual(["/bin/sh", "-c"]);
    const run = spawnSync("/bin/sh", ["-c", init["args"][0]], {
      env: { PATH: `${bin}:${process.env["PATH"]}`, CASSANDRA_CONTACT_POINTS, CASSANDRA_LOCAL_DC },
      encoding: "utf8",
    });
    const [host, port, flag, statement] = run.stdout.trim().split("\n");
    expect(`${host}:${port}`).toBe(CASSANDRA_CONTACT_POINTS.split(",")[0]);
    expect(flag).toBe("-e");
    const keyspace = uniqueName("deploy_ks").replace(/-/g, "_");
    const client = new cassandra.Client(cassandraContactPoint());
    try {
      await client.execute(statement!.replace(/EXISTS tessera /, `EXISTS ${keyspace} `));
      const row = (
        await client.execute("SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = ?", [
          keyspace,
        ])
      ).first();
      expect(row["replication"]).toEqual({
        class: "org.apache.cassandra.locator.NetworkTopologyStrategy",
        [CASSANDRA_LOCAL_DC]: "3",
      });
    } finally {
      await client.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`).catch(() => {});
      await client.shutdown();
    }
  });

  it("prod keeps the feature server available: HPA from 3, two pods through a drain, spread over nodes", () => {
    const { objects } = render("prod");
    expect(named(objects, "HorizontalPodAutoscaler", "feature-server")!["spec"]).toMatchObject({
      minReplicas: 3,
      maxReplicas: 20,
    });
    expect(named(objects, "PodDisruptionBudget", "feature-server")!["spec"]["minAvailable"]).toBe(2);
    const spread = podSpec(named(objects, "Deployment", "feature-server")!)["topologySpreadConstraints"];
    expect(spread[0]["whenUnsatisfiable"]).toBe("DoNotSchedule");
  });

  it("prod's KEDA trigger watches the processor's own consumer group, topic and brokers", () => {
    const { objects } = render("prod");
    const trigger = named(objects, "ScaledObject", "stream-processor")!["spec"]["triggers"][0];
    const processor = configOf(objects, "stream-processor.yaml");
    const definitions = configOf(objects, "definitions.yaml");
    expect(trigger["type"]).toBe("kafka");
    expect(trigger["metadata"]["consumerGroup"]).toBe(`tessera-processor-${processor["name"]}`);
    expect(definitions["sources"].map((s: Doc) => s["topic"])).toContain(trigger["metadata"]["topic"]);
    expect(trigger["metadata"]["bootstrapServers"]).toBe(connections(objects)["KAFKA_BROKERS"]);
    const inits = podSpec(named(objects, "Deployment", "stream-processor")!)["initContainers"] as Doc[];
    const topics = inits.find((c) => c["name"] === "create-topics")!["args"] as string[];
    // More processors than partitions would sit idle.
    const partitions = Number(topics[topics.indexOf("--partitions") + 1]);
    expect(
      named(objects, "ScaledObject", "stream-processor")!["spec"]["maxReplicaCount"],
    ).toBeLessThanOrEqual(partitions);
  });
});
