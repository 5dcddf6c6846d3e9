# One image for the gateway and the connector: `gatehouse gateway …` or `gatehouse connector`.
FROM node:20-bookworm-slim AS build
RUN npm install --global pnpm@10.34.9
WORKDIR /src
COPY . .
RUN pnpm install --frozen-lockfile && pnpm build && pnpm deploy --filter @gatehouse/cli --prod --legacy /app

FROM node:20-bookworm-slim
COPY --from=build /app /app
WORKDIR /var/lib/gatehouse
ENTRYPOINT ["node", "/app/dist/main.js"]
CMD ["--help"]
