/**
 * @tessera/client: typed feature vectors for inference services, over HTTP or gRPC.
 * See docs/client.md.
 */
export {
  type ClientOptions,
  createClient,
  type HedgeOptions,
  type RetryOptions,
  type TesseraClient,
} from "./client.js";
export {
  featureServiceConstructor,
  GrpcTransport,
  type GrpcTransportOptions,
  PROTO_PATH,
  type ProtoValue,
  toProto,
} from "./grpc.js";
export { HttpTransport, type HttpTransportOptions } from "./http.js";
export {
  type EntityFeatures,
  type EntityIds,
  type EntityKeyOf,
  type EntityResult,
  type ErrorCode,
  type Expand,
  type FeatureRef,
  type FeatureResult,
  type FeatureSchema,
  type FeatureStatus,
  type FeatureValue,
  type GateInfo,
  type GetFeaturesRequest,
  type GetFeaturesResult,
  TesseraClientError,
  type Transport,
  type UntypedSchema,
  type ViewStatus,
  type WireRequest,
  type WireResponse,
} from "./types.js";
