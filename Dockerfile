# The riskmon image: compiled JavaScript on Node.js 24 LTS, production dependencies only, run as the unprivileged `node`
# user, `riskmon` as the entrypoint (`docker run riskmon:local api`, `… cdc`, `… migrate`, …).
#   docker build -t riskmon:local .                                           # official base image
#   docker build --build-arg NODE_IMAGE=riskmon-local/node:24-bookworm-slim -t riskmon:local .   # a stand-in
# compose.yaml passes RISKMON_NODE_IMAGE as NODE_IMAGE.
ARG NODE_IMAGE=node:24-bookworm-slim

# 1. build: every dependency, then `npm run build` (dashboard + tsc → dist/).
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/ scripts/
COPY lib/ lib/
COPY cdc/ cdc/
COPY aggregator/ aggregator/
COPY alerting/ alerting/
COPY api/ api/
COPY web/ web/
COPY sql/ sql/
RUN npm run build

# 2. production dependencies only, in a stage of their own so no dev dependency or npm cache reaches the image.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --loglevel=error && rm -rf /root/.npm

# 3. the image.
FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY scripts/riskmon.mjs scripts/healthcheck.mjs ./scripts/
RUN ln -s /app/scripts/riskmon.mjs /usr/local/bin/riskmon \
 && node -e "require('node:fs').accessSync('/app/dist/scripts/cli.js')"
USER node
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["node", "/app/scripts/healthcheck.mjs"]
ENTRYPOINT ["riskmon"]
CMD ["--help"]
