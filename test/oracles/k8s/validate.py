"""Validate Kubernetes objects (a YAML stream on stdin) against kubernetes-validate's pinned schemas.

Usage: validate.py <kubernetes-version> [--strict]
Prints one JSON line per object: {"kind", "name", "status": "valid" | "invalid" | "no-schema", "error"}.
Strict schemas reject properties the API does not define (a misspelt field fails, not vanishes).
"""
import json
import sys

import kubernetes_validate
import yaml
from kubernetes_validate.utils import SchemaNotFoundError, ValidationError


def main() -> None:
    version = sys.argv[1]
    strict = "--strict" in sys.argv[2:]
    for doc in yaml.safe_load_all(sys.stdin):
        if doc is None:
            continue
        result = {"kind": doc.get("kind"), "name": doc.get("metadata", {}).get("name")}
        try:
            kubernetes_validate.validate(doc, version, strict=strict)
            result["status"] = "valid"
        except SchemaNotFoundError:
            result["status"] = "no-schema"
        except ValidationError as error:
            path = "/".join(str(p) for p in error.absolute_path)
            result.update(status="invalid", error=f"{path}: {error.message}")
        print(json.dumps(result))


if __name__ == "__main__":
    main()
