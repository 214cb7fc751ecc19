#!/bin/sh
# Entry point of the Tessera image: the first argument names the program, the rest are its arguments.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
program="${1:-}"
case "$program" in
  stream-processor | archiver | feature-server | drift-worker)
    shift
    exec node "$root/services/$program/dist/main.js" "$@"
    ;;
  tessera)
    shift
    exec node "$root/services/cli/bin/tessera.js" "$@"
    ;;
  *)
    echo "tessera image: unknown program \"$program\"" >&2
    echo "usage: <stream-processor|archiver|feature-server|drift-worker|tessera> [arguments...]" >&2
    exit 64
    ;;
esac
