"""Independent gRPC client for the Tessera feature server (Python grpcio, stubs from grpcio-tools).

Usage: client.py <stubs dir> <host:port> <api key>   (request JSON on stdin, response JSON on stdout)

The stubs are generated from schemas/proto/feature_service.proto by the calling test, with
`python -m grpc_tools.protoc`, so nothing here is hand-written against the wire format. The request
JSON uses the proto's field names; the response is printed with MessageToDict (proto field names,
int64 as text, as protobuf's JSON mapping says). On an RPC error it prints {"code", "details"}.
"""

import json
import sys


def main() -> int:
    stubs, target, api_key = sys.argv[1], sys.argv[2], sys.argv[3]
    sys.path.insert(0, stubs)
    import grpc
    from google.protobuf import json_format

    import feature_service_pb2 as pb
    import feature_service_pb2_grpc as rpc

    request = json_format.ParseDict(json.load(sys.stdin), pb.GetOnlineFeaturesRequest())
    with grpc.insecure_channel(target) as channel:
        stub = rpc.FeatureServiceStub(channel)
        try:
            response = stub.GetOnlineFeatures(request, metadata=[("x-api-key", api_key)], timeout=10)
        except grpc.RpcError as error:
            print(json.dumps({"code": error.code().name, "details": error.details()}))
            return 0
    print(json.dumps(json_format.MessageToDict(response, preserving_proto_field_name=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
