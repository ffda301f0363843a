# One image for the worker and the one-shot migration job (docker-compose.yml). Runs the TypeScript
# sources through tsx, as the dev stack does, so what is tested is what ships.
FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY tsconfig.json ./
COPY lib ./lib
COPY activities ./activities
COPY workflows ./workflows
COPY workers ./workers
COPY client ./client
# ehrctl reads a running dev stack's settings (dev/stack-files.ts) when its environment names none.
COPY dev ./dev
COPY migrations ./migrations
COPY bin ./bin
USER node
# Started as the dev stack, tests and benchmarks start it: workers/node-process.ts says why these flags.
ENV MALLOC_ARENA_MAX=2
ENV MALLOC_MMAP_THRESHOLD_=131072
ENV MALLOC_TRIM_THRESHOLD_=131072
CMD ["node", "--require", "tsx/cjs", "--max-semi-space-size=2", "--heap-growing-percent=20", "workers/worker.ts"]
