/**
 * Strict decoding of GetOnlineFeaturesRequest. grpc-js answers a message its deserializer cannot
 * read with INTERNAL, and @grpc/proto-loader's protobuf.js 7 reads invalid UTF-8 in a string field
 * as U+FFFD (so two different ids would become one). This deserializer uses protobuf.js 8, which
 * verifies UTF-8 as proto3 requires, and never throws: a message that is not a valid request —
 * truncated, nested past the decoder's depth limit, a string field that is not UTF-8 — becomes a
 * `MalformedRequest`, which the handler answers with INVALID_ARGUMENT once the caller is
 * authenticated.
 */
import protobuf from "protobufjs";

const OBJECT_OPTIONS = { longs: Number, enums: String, defaults: false, oneofs: true } as const;

export class MalformedRequest {
  constructor(readonly reason: string) {}
}

/** A deserializer for the message `typeName` of `protoPath`, as grpc-js's `requestDeserialize`. */
export function strictRequestDecoder(protoPath: string, typeName: string): (buffer: Buffer) => unknown {
  const root = new protobuf.Root();
  root.loadSync(protoPath, { keepCase: true });
  const type = root.lookupType(typeName);
  return (buffer) => {
    try {
      return type.toObject(type.decode(buffer), OBJECT_OPTIONS);
    } catch (error) {
      return new MalformedRequest((error as Error).message);
    }
  };
}
