# syntax=docker/dockerfile:1
# aiecs image: one image for every role. The default command is the gateway; run a worker with
#   docker run aiecs worker -Q fast_tasks --metrics-port 9464
# (and point the HEALTHCHECK at the metrics port, or disable it: see the README's Deployment section).

# Build stage: the TypeScript build needs the dev dependencies.
FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# The build's step that copies the SQL and Lua files next to the compiled code.
COPY scripts ./scripts
RUN npm run build

# Runtime stage: production dependencies and the built JavaScript only.
FROM node:20-slim AS runtime
# tini as PID 1: forwards SIGTERM to node (which drains running tasks within
# AIECS_SHUTDOWN_TIMEOUT_S) and reaps the heavy pool's exited child processes.
RUN apt-get update \
  && apt-get install -y --no-install-recommends tini \
  && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
    AIECS_HOST=0.0.0.0 \
    PORT=8000
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# The embedded store's default directory (./.aiecs/data) must be writable by the non-root user.
RUN mkdir -p /app/.aiecs && chown node:node /app/.aiecs
# The node image's unprivileged user (uid 1000).
USER node
EXPOSE 8000
# Fits the default command (the gateway on $PORT). node:20-slim has no curl, so node fetches.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/dist/cli/main.js"]
CMD ["gateway"]
