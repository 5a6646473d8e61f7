# syntax=docker/dockerfile:1
# hubex-router: multi-stage build, production dependencies only, non-root, data in /data.
#
# Both stages start from one base image, pinned by the digest of its multi-arch index (as
# docker-library/repo-info lists it for node:22.23.3-bookworm-slim: amd64, arm64, arm/v7, ppc64le): a build
# next month starts from the same bytes as today's, and the native better-sqlite3 addon is built
# for the Node that runs it. The tag says which Node that is; the digest is what Docker pulls.
# To move to a newer image, read the current index digest of the tag:
#   docker buildx imagetools inspect node:22-bookworm-slim      # the "Digest:" line
#   # or: docker pull node:22-bookworm-slim && docker inspect --format '{{index .RepoDigests 0}}' node:22-bookworm-slim
# then write the new version and digest in both FROM lines. Dependabot (a "docker" entry in
# .github/dependabot.yml) and Renovate keep tag@digest pins current by opening that change.
#
# Node 22 (LTS until April 2027). On Node 22 and later the router loads better-sqlite3 13, the
# optional dependency better-sqlite3-node22 (src/queue/sqlite/driver.ts): 12.x can abort the
# process on Node 24.19 and later ("Assertion failed: (env) != nullptr" in Statement::~Statement).
# The suite passes on 24 too (scripts/test-node-versions.sh), so moving there is a tag change.

# --- build: compile TypeScript (and the native better-sqlite3 addon) ---
FROM node:22.23.3-bookworm-slim@sha256:43ac6c60b8f89723f746e8a92ce91abd5017e627ce1ddfe4238355d3a30b772c AS build
WORKDIR /app
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY routes ./routes
COPY handlers ./handlers
COPY scripts/copy-assets.mjs ./scripts/
# tsconfig.build.json compiles src/, routes/ and handlers/ into dist/ (the shipped handlers land
# in dist/handlers/, where the loader looks). go-w: the run stage copies these with their modes,
# so none of them is writable by group or others, whatever umask or package modes the build met.
RUN npm run build \
 && npm prune --omit=dev \
 && chmod -R go-w package.json node_modules dist

# --- run ---
FROM node:22.23.3-bookworm-slim@sha256:43ac6c60b8f89723f746e8a92ce91abd5017e627ce1ddfe4238355d3a30b772c
ENV NODE_ENV=production \
    DATA_DIR=/data \
    PORT=3000 \
    HOST=0.0.0.0
WORKDIR /app
# The application stays root's (COPY without --chown) and read-only to the node user that runs
# it: a compromised handler or dependency cannot rewrite the code the next start loads. The
# router writes only into DATA_DIR (the SQLite file, the generated token): /data is the one
# folder given to node.
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# SIGTERM lets the router refuse new calls and finish the ones in flight; give it time to.
STOPSIGNAL SIGTERM
CMD ["node", "--enable-source-maps", "dist/src/main.js"]
