# One image for the gateway and the connector: `gatehouse gateway …` or `gatehouse connector`.
FROM node:20-bookworm-slim AS build
RUN npm install --global pnpm@10.34.9
WORKDIR /src
COPY . .
RUN pnpm install --frozen-lockfile && pnpm build && pnpm deploy --filter @gatehouse/cli --prod --legacy /app

FROM node:20-bookworm-slim
COPY --from=build /app /app
# `gatehouse` on PATH (the CLI package's bin), so `docker run IMAGE …` and
# `docker exec CONTAINER gatehouse sessions list` both work. Node follows the
# symlink to /app/dist/main.js and finds /app/node_modules from there.
RUN chmod 755 /app/dist/main.js && ln -s /app/dist/main.js /usr/local/bin/gatehouse \
 && mkdir -p /var/lib/gatehouse && chown node:node /var/lib/gatehouse
WORKDIR /var/lib/gatehouse
# Not root: the image's `node` user (uid 1000), which deploy/kubernetes also runs as. The data
# directory is its own, so a fresh Docker volume mounted there is too.
USER node
ENTRYPOINT ["gatehouse"]
CMD ["--help"]
