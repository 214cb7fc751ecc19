// Definitions: the TypeScript DSL and YAML front-ends share one validator.

// Aggregators (commutative monoids with binary state).
export {
  type Aggregator,
  createAggregator,
  type FeatureValue,
  HLL_PRECISION,
  inputKind,
  OPS,
  type Op,
  type OpState,
  QUANTILE_ACCURACY,
} from "./aggregators/index.js";
export {
  columnInputs,
  type EventColumns,
  pointInTime,
  pointInTimeAsIngested,
  pointInTimeColumns,
} from "./batch.js";
export { ByteReader, ByteWriter } from "./bytes.js";
export { compileCel } from "./definitions/cel.js";
export { defineDefinitions, feature, model, source, view } from "./definitions/dsl.js";
export {
  type Lineage,
  lineageOf,
  type SourceLineage,
  type ViewLineage,
  withSchemaVersions,
} from "./definitions/lineage.js";
export { type OwnedItem, unowned } from "./definitions/ownership.js";
export {
  COMPATIBILITY,
  type Compatibility,
  type Definitions,
  type DefinitionsSpec,
  type Derive,
  type DeriveSpec,
  type Duration,
  type Feature,
  type FeatureSpec,
  type FilterSpec,
  type Freshness,
  type GateSpec,
  type Model,
  type ModelSpec,
  type OnCallSpec,
  type OnStale,
  type Ownership,
  type OwnershipSpec,
  type Row,
  SLO_KINDS,
  type Slo,
  type SloKind,
  type SloSpec,
  type Source,
  type SourceSpec,
  type View,
  type ViewSpec,
} from "./definitions/types.js";
export {
  DefinitionError,
  type DefinitionIssue,
  resolveDefinitions,
  validateDefinitions,
} from "./definitions/validate.js";
export { parseDefinitionsYaml } from "./definitions/yaml.js";
// Time, tiles and windows.
export { defaultHop, formatDuration, parseDuration } from "./duration.js";
// Evaluators: incremental (streaming, feature server) and point-in-time batch (snapshots).
export {
  type FeatureVector,
  type Prepared,
  type PreparedEvent,
  type ViewRuntime,
  viewRuntime,
} from "./events.js";
export {
  ack as ackGate,
  DEFAULT_GATE_OPTIONS,
  effective as effectiveGate,
  encodeGateState,
  GATE_CAUSES,
  GATE_LOG_LENGTH,
  GATE_STATES,
  type GateAction,
  type GateCause,
  GateError,
  type GateOptions,
  type GateState,
  type GateStatus,
  gateSubject,
  type Observation as GateObservation,
  type OnTrip,
  type OperatorAction as GateOperatorAction,
  observe as observeGate,
  override as overrideGate,
  parseGateState,
  parseGateSubject,
  release as releaseGate,
  servesNormally,
} from "./gate.js";
export {
  EventColumnsBuilder,
  EventRowError,
  pointInTimeSpine,
  type SpineEvents,
  type SpineRows,
} from "./snapshot.js";
export {
  encodeTileState,
  type FeatureLayout,
  FORMAT_VERSION,
  finalizeStored,
  finalizeTiles,
  type GroupLayout,
  type LogPosition,
  sameWindows,
  TileReader,
  type TileSource,
  TileState,
  TileStateError,
  tileStateExpiry,
  type ViewLayout,
  viewLayout,
} from "./tile-state.js";
export { parseTimestamp } from "./time.js";
export {
  type ApplyResult,
  type EncodedEntity,
  finalizeAt,
  ViewState,
  type ViewStateOptions,
} from "./view-state.js";
export { DEFAULT_MAX_SKEW_MS, isExpired, isLate, tileStart, windowStart } from "./windows.js";
