/**
 * startDriftWorker(config, deps): the drift worker as a library. In a process of its own it reads
 * Kafka (main.ts); in the embedded demo `input: "push"` skips Kafka and records are handed to
 * `handle.ingest` directly, with alerts going to the sinks given in deps.
 */
import { readFile } from "node:fs/promises";
import {
  type Bus,
  createKafka,
  DeadLetterPublisher,
  type DriftAlertRecord,
  type FeatureUpdateRecord,
  GatePublisher,
  type LabelRecord,
  type PredictionRecord,
  SchemaRegistry,
  TesseraProducer,
} from "@tessera/kafka";
import { ConfigError, createLogger, type Logger, loadDefinitions, opsRoutes } from "@tessera/runtime";
import type { ReferenceProfile } from "@tessera/stats";
import { DEFAULT_GATE_OPTIONS, type Definitions } from "@tessera/transforms";
import Fastify from "fastify";
import { Registry } from "prom-client";
import { AlertDispatcher, type AlertSink, driftAlertSchema, KafkaAlertSink, WebhookSink } from "./alerts.js";
import type { DriftWorkerConfig } from "./config.js";
import { dashboardPlugin } from "./dashboard.js";
import { GateWatcher } from "./gates.js";
import { KafkaInput } from "./kafka-input.js";
import { workerMetrics } from "./metrics.js";
import { DriftMonitor } from "./monitor.js";
import { ownerLabels } from "./owners.js";
import { StatePersistence } from "./persistence.js";
import { PipelineTracker } from "./pipeline.js";
import { KafkaStateStore } from "./state-store.js";
import type { DriftStatus } from "./status.js";
import { traceAlert } from "./tracing.js";

export { binary, outcomeOf, rocAuc } from "./accuracy.js";
export { alertLine } from "./alert-text.js";
export { AlertDispatcher, type AlertSink, alertmanagerPayload, CallbackSink, WebhookSink } from "./alerts.js";
export { configSchema, type DriftWorkerConfig, defaultConfig } from "./config.js";
export { type DashboardOptions, dashboardPlugin } from "./dashboard.js";
export { adjust } from "./evaluate.js";
export { type GateInputs, GateWatcher } from "./gates.js";
export { AlertTracker, type Observation } from "./hysteresis.js";
export { DriftMonitor } from "./monitor.js";
export { ownerLabels } from "./owners.js";
export { type PipelineItem, type PipelineStatus, PipelineTracker, type SloStatus } from "./pipeline.js";
export { KafkaStateStore, type StateSnapshot } from "./state-store.js";
export type * from "./status.js";

export interface DriftWorkerDeps {
  /** The reference profile; default: read config.reference.path. */
  profile?: ReferenceProfile;
  /** "kafka" (default) consumes the topics; "push" takes records through handle.ingest only. */
  input?: "kafka" | "push";
  kafka?: Bus;
  registry?: SchemaRegistry;
  /** Alerts to the alert topic (default true with Kafka input). */
  publishAlerts?: boolean;
  /** More alert sinks (the demo's in-memory topic, a test's callback). */
  sinks?: AlertSink[];
  metricsRegistry?: Registry;
  logger?: Logger;
  /** Serve /v1/status and the ops routes (default true). */
  http?: boolean;
  /** Run evaluations on the config's interval (default true); tests call handle.evaluate(). */
  schedule?: boolean;
  /** Keep state on topics.state and read it back at start (default true with Kafka input). */
  persistState?: boolean;
  /** Definitions (owners, SLAs, floors); default: read config.definitions, if set. */
  definitions?: Definitions;
  /** Where gate trips go (the demo's or a test's, started); default: one on Kafka when config.gates.enabled. */
  gatePublisher?: GatePublisher;
  now?: () => number;
}

export interface DriftWorkerHandle {
  monitor: DriftMonitor;
  ingest: {
    featureUpdate(update: FeatureUpdateRecord): void;
    prediction(prediction: PredictionRecord): void;
    label(label: LabelRecord): void;
  };
  /** One evaluation; with persisted state it resolves once the state is saved and alerts queued. */
  evaluate(): Promise<void>;
  /** GET /v1/status: the monitor's view, plus where the state is kept. */
  status(): DriftStatus;
  /** Resolves once every queued alert has been delivered or given up. */
  flushAlerts(): Promise<void>;
  /** The HTTP server's address, when it runs. */
  url?: string;
  /** Rejects if the Kafka consumer stops on a fatal error (the process should then exit). */
  done: Promise<void>;
  stop(): Promise<void>;
}

export async function loadProfile(path: string): Promise<ReferenceProfile> {
  const text = await readFile(path, "utf8").catch((error: NodeJS.ErrnoException) => {
    throw new Error(`reference profile ${path}: ${error.code ?? error.message}`);
  });
  let profile: ReferenceProfile;
  try {
    profile = JSON.parse(text) as ReferenceProfile;
  } catch (error) {
    throw new Error(`reference profile ${path} is not JSON: ${(error as Error).message}`);
  }
  if (profile?.version !== 1 || typeof profile.features !== "object" || profile.features === null)
    throw new Error(`reference profile ${path} is not a Tessera profile (version 1 with "features")`);
  return profile;
}

export async function startDriftWorker(
  config: DriftWorkerConfig,
  deps: DriftWorkerDeps = {},
): Promise<DriftWorkerHandle> {
  const logger = deps.logger ?? createLogger("drift-worker");
  const metricsRegistry = deps.metricsRegistry ?? new Registry();
  const metrics = workerMetrics(metricsRegistry);
  let profile = deps.profile;
  if (!profile) {
    if (!config.reference.path) throw new Error("reference.path: a reference profile is required");
    profile = await loadProfile(config.reference.path);
  }
  if (config.window.mode === "count" && config.window.size < config.thresholds.minSamples)
    logger.warn(
      { size: config.window.size, minSamples: config.thresholds.minSamples },
      "window.size is below thresholds.minSamples: windows will get no verdict",
    );

  const useKafka = (deps.input ?? "kafka") === "kafka";
  const kafka = useKafka ? (deps.kafka ?? createKafka({ clientId: "tessera-drift-worker" })) : undefined;
  const registry = useKafka ? (deps.registry ?? new SchemaRegistry()) : undefined;
  const producer =
    kafka && registry
      ? new TesseraProducer({
          kafka,
          registry,
          metricsRegistry,
          schemas: { [config.topics.alerts]: driftAlertSchema },
        })
      : undefined;

  const definitions =
    deps.definitions ?? (config.definitions ? await loadDefinitions(config.definitions) : undefined);
  let gatePublisher = deps.gatePublisher;
  const ownGatePublisher = !gatePublisher && config.gates.enabled;
  if (ownGatePublisher) {
    if (!kafka)
      throw new ConfigError(["gates.enabled: the quality gate is published on Kafka (needs Kafka input)"]);
    gatePublisher = new GatePublisher({
      kafka,
      topic: config.gates.topic,
      clientId: "tessera-drift-worker-gate",
      gate: { ...DEFAULT_GATE_OPTIONS, clearAfterMs: config.gates.clearAfterMs },
    });
    await gatePublisher.start();
  }
  const gates = gatePublisher && new GateWatcher({ publisher: gatePublisher, definitions, logger });
  const pipeline = definitions && new PipelineTracker(definitions);

  const sinks: AlertSink[] = [...(deps.sinks ?? [])];
  if (producer && (deps.publishAlerts ?? true))
    sinks.push(new KafkaAlertSink(producer, config.topics.alerts));
  let url: string | undefined;
  const webhook = config.webhook.url
    ? new WebhookSink(
        config.webhook.url,
        config.webhook.timeoutMs,
        undefined,
        definitions ? (alert) => ownerLabels(definitions, alert) : undefined,
      )
    : undefined;
  if (webhook) sinks.push(webhook);
  let persistence: StatePersistence | undefined;
  const dispatcher = new AlertDispatcher(sinks, {
    retries: config.webhook.retries,
    maxQueue: config.webhook.maxQueue,
    logger,
    metrics,
    onSettled: (alert, sink) => persistence?.settled(alert, sink),
  });
  /** Every sink, but the pager not for an alert whose gate its owner acked (gates.ts). */
  const sinksFor = (alert: DriftAlertRecord): ((sink: AlertSink) => boolean) | undefined =>
    webhook && gates && !gates.pages(alert, (deps.now ?? Date.now)())
      ? (sink) => sink !== webhook
      : undefined;
  /** With persisted state, an evaluation's alerts wait until the state that names them is saved. */
  const held: DriftAlertRecord[] = [];
  const monitor = new DriftMonitor({
    config,
    profile,
    metrics,
    now: deps.now,
    viewSlaMs: new Map(
      (definitions?.views ?? []).flatMap((v) =>
        v.freshness ? [[v.name, v.freshness.maxAgeMs] as const] : [],
      ),
    ),
    emit: (alert) => {
      traceAlert(alert); // tracing: a span in the window's trace; the alert then names it
      logger.info({ alert }, alert.message);
      if (persistence) held.push(alert);
      else dispatcher.publish(alert, sinksFor(alert));
    },
  });

  let input: KafkaInput | undefined;
  if (kafka && registry && producer) {
    await producer.connect();
    const dlqProducer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await dlqProducer.connect();
    input = new KafkaInput({
      kafka,
      registry,
      config,
      monitor,
      logger,
      metricsRegistry,
      manualCommit: deps.persistState ?? true,
      deadLetters: new DeadLetterPublisher({
        producer: dlqProducer,
        registry,
        service: "drift-worker",
        topic: config.topics.deadLetter,
        metricsRegistry,
      }),
    });
    input.loop.done.catch((error) => logger.error({ err: error }, "consumer stopped on a fatal error"));
    if (deps.persistState ?? true) {
      // Before anything is consumed or evaluated: the restored state is what new records extend.
      const store = new KafkaStateStore({
        kafka,
        topic: config.topics.state,
        groupId: config.groupId,
        logger,
      });
      await store.connect();
      persistence = new StatePersistence(store, monitor, config.topics.state, logger);
      const owed = await persistence.restore(input);
      const timeline = monitor.status().alerts.timeline;
      for (const alert of [...monitor.activeAlerts(), ...timeline.filter((a) => a.status === "FIRING")])
        webhook?.remember(alert);
      for (const { alert, sinks: names } of owed)
        dispatcher.publish(alert, (sink) => names.includes(sink.name));
      logger.info(
        { topic: config.topics.state, open: monitor.activeAlerts().length, owed: owed.length },
        "state restored",
      );
    }
    await input.start();
    const stopInput = input.stop.bind(input);
    input.stop = async () => {
      await stopInput();
      await dlqProducer.disconnect().catch(() => {});
    };
  }

  let evaluating: Promise<void> | undefined;
  const evaluateOnce = async () => {
    try {
      monitor.evaluate();
    } catch (error) {
      logger.error({ err: error }, "evaluation failed");
    }
    if (persistence) {
      const alerts = held.splice(0).map((alert) => ({ alert, only: sinksFor(alert) }));
      for (const { alert, only } of alerts)
        persistence.hold(
          alert,
          dispatcher.sinkNames.filter((name) => !only || name !== webhook?.name),
        );
      // A page is never held back by the state topic: it goes out even if the save failed.
      await persistence.save().catch(() => {});
      for (const { alert, only } of alerts) dispatcher.publish(alert, only);
    }
    // After the alerts: a FIRING of this evaluation is judged against the gate as its owner left it.
    const readings = {
      now: (deps.now ?? Date.now)(),
      viewAges: monitor.viewAges(),
      accuracy: monitor.latestAccuracy(),
    };
    await gates?.evaluate({ ...readings, incidents: monitor.incidents() });
    pipeline?.observe(readings);
  };
  const evaluate = () => {
    evaluating ??= evaluateOnce().finally(() => {
      evaluating = undefined;
    });
    return evaluating;
  };
  const status = (): DriftStatus => ({
    ...monitor.status(),
    ...(persistence ? { state: persistence.status() } : {}),
    ...(pipeline
      ? { pipeline: pipeline.status(gatePublisher?.status() ?? [], (deps.now ?? Date.now)()) }
      : {}),
  });
  const timers: NodeJS.Timeout[] = [];
  if (deps.schedule ?? true) {
    timers.push(setInterval(() => void evaluate(), config.evaluation.intervalMs));
    if (input) {
      const poll = () =>
        input!.pollLag().then(
          (readings) => monitor.setLag(readings),
          (error) => logger.warn({ err: error }, "consumer lag poll failed"),
        );
      timers.push(setInterval(poll, Math.max(config.evaluation.intervalMs, 5000)));
    }
  }
  if (webhook) {
    // Alertmanager ends an alert it has not heard of for resolve_timeout: repeat the open ones.
    timers.push(
      setInterval(() => {
        for (const alert of monitor.activeAlerts())
          if (gates?.repeats(alert) ?? true) dispatcher.publish(alert, (sink) => sink === webhook);
      }, config.webhook.repeatMs),
    );
  }
  for (const timer of timers) timer.unref();

  let app: ReturnType<typeof Fastify> | undefined;
  if (deps.http ?? true) {
    app = Fastify({ logger: false });
    await app.register(opsRoutes, {
      registry: metricsRegistry,
      readiness: () => ({
        ready: input ? input.ready : true,
        detail:
          !input || input.ready
            ? {}
            : { consumer: input.failure ? "stopped on a fatal error" : "not yet in its group" },
      }),
    });
    app.get("/v1/status", async () => status());
    await app.register(dashboardPlugin({ status }));
    url = await app.listen({ host: config.http.host, port: config.http.port });
    if (webhook) webhook.generatorURL = `${url}/v1/status`;
  }

  return {
    monitor,
    ingest: {
      featureUpdate: (update) => monitor.ingestFeatureUpdate(update),
      prediction: (prediction) => monitor.ingestPrediction(prediction),
      label: (label) => monitor.ingestLabel(label),
    },
    evaluate,
    status,
    flushAlerts: () => dispatcher.flush(),
    url,
    done: input ? input.loop.done : new Promise<void>(() => {}),
    async stop() {
      for (const timer of timers) clearInterval(timer);
      await input?.stop();
      // Everything consumed is in the saved state: a clean restart resumes exactly here.
      await evaluating;
      await persistence?.save().catch(() => {});
      await persistence?.close();
      // Deliver what is queued, but a sink that is down must not hold shutdown for long.
      await Promise.race([dispatcher.stop(), new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
      dispatcher.abort();
      await producer?.disconnect();
      if (ownGatePublisher) await gatePublisher?.stop();
      if (registry && !deps.registry) registry.close();
      await app?.close();
    },
  };
}
