# syntax=docker/dockerfile:1
# One image for every Tessera program. The first argument picks it:
#   docker run tessera stream-processor --config /etc/tessera/stream-processor.yaml
#   docker run tessera tessera topics create
# (stream-processor | archiver | feature-server | drift-worker | tessera)
ARG NODE_IMAGE=node:20.20.2-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
# Manifests first, so the npm ci layer is reused until a dependency changes.
# Every workspace's package.json must be listed (test/deploy/image.test.ts checks).
COPY package.json package-lock.json ./
COPY libs/client/package.json libs/client/
COPY libs/kafka/package.json libs/kafka/
COPY libs/runtime/package.json libs/runtime/
COPY libs/stats/package.json libs/stats/
COPY libs/stores/package.json libs/stores/
COPY libs/transforms/package.json libs/transforms/
COPY services/archiver/package.json services/archiver/
COPY services/cli/package.json services/cli/
COPY services/drift-worker/package.json services/drift-worker/
COPY services/feature-server/package.json services/feature-server/
COPY services/stream-processor/package.json services/stream-processor/
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.base.json ./
COPY schemas schemas
COPY libs libs
COPY services services
RUN npx tsc -b && npm prune --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
# node_modules/@tessera/* are relative symlinks into libs/ and services/: copy both sides.
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/schemas schemas
COPY --from=build /app/libs libs
COPY --from=build /app/services services
# `tessera demo` reads its definitions from examples/.
COPY examples examples
COPY deploy/docker/entrypoint.sh deploy/docker/probe.mjs deploy/docker/
RUN ln -s /app/services/cli/bin/tessera.js /usr/local/bin/tessera \
  && mkdir -p /etc/tessera /var/lib/tessera/archive \
  && chown node:node /var/lib/tessera/archive
USER node
EXPOSE 8080 50051 9101 9102 9103
ENTRYPOINT ["/app/deploy/docker/entrypoint.sh"]
CMD ["tessera", "--help"]
