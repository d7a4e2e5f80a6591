# syntax=docker/dockerfile:1
# pool-reaper worker image: `docker build -t pool-reaper .` (Node.js 24, the active LTS line;
# pin by digest in your registry mirror for reproducible builds: node:24-bookworm-slim@sha256:...)
#   docker run --rm pool-reaper --help                        # the CLI
#   docker run --rm -e TEMPORAL_ADDRESS=... pool-reaper       # the worker (default command)
#   docker run --rm pool-reaper migrate --create-database     # one-shot schema migration

FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would run the build before the sources are copied. No runtime
# dependency needs its install script (the Temporal core bridge and @swc/core ship prebuilt
# binaries as packages).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY workflows ./workflows
COPY activities ./activities
# Then drop dev dependencies, and the Temporal core bridge's macOS and Windows prebuilds (~80 MB).
RUN npm run build \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
 && rm -rf node_modules/@temporalio/core-bridge/releases/*-apple-darwin \
           node_modules/@temporalio/core-bridge/releases/*-windows-*

FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY bin ./bin
# `pool-reaper status` etc. inside the container (docker compose exec worker pool-reaper status).
RUN ln -s /app/bin/pool-reaper.js /usr/local/bin/pool-reaper
# Non-root: the image's own `node` user (uid 1000). Nothing under /app is writable by it.
USER node
# 9464: the reaper's /metrics (METRICS_PORT); 9465: the Temporal SDK's /metrics (TEMPORAL_METRICS_PORT).
EXPOSE 9464 9465
# Exec form, no npm and no shell in between: the SIGTERM that `docker stop` sends reaches node,
# which lets in-flight activities drain for REAPER_SHUTDOWN_GRACE (give the container a stop
# timeout above it: docker stop -t 45, compose stop_grace_period).
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/src/cli.js"]
CMD ["worker"]
