import { createServer, type Server, type ServerResponse } from "node:http";

/** Writes a Prometheus exposition: never cached, its length known. */
export function sendMetrics(response: ServerResponse, exposition: { contentType: string; text: string }): void {
  response.writeHead(200, { "Content-Type": exposition.contentType, "Content-Length": Buffer.byteLength(exposition.text), "Cache-Control": "no-store" });
  response.end(exposition.text);
}

/**
 * The `listen.metrics` listener: only GET /metrics, plain HTTP and without a token, as Prometheus
 * scrapes. Its own port keeps the scrape apart from the API (another network, no admin routes
 * exposed to the monitoring system); when it is not configured the API listener serves /metrics.
 */
export function createMetricsServer(exposition: () => Promise<{ contentType: string; text: string }>, onError: (error: unknown) => void): Server {
  return createServer((request, response) => {
    const path = new URL(request.url ?? "/", "http://gateway").pathname;
    if (path !== "/metrics") {
      response.writeHead(404, { "Content-Type": "text/plain; charset=utf-8" });
      response.end("only /metrics is served here\n");
      return;
    }
    if (request.method !== "GET" && request.method !== "HEAD") {
      response.writeHead(405, { Allow: "GET, HEAD", "Content-Type": "text/plain; charset=utf-8" });
      response.end(`${request.method} is not supported on /metrics\n`);
      return;
    }
    exposition().then(
      (result) => sendMetrics(response, result),
      (error: unknown) => {
        onError(error);
        response.writeHead(500, { "Content-Type": "text/plain; charset=utf-8" });
        response.end("the metrics could not be collected\n");
      },
    );
  });
}
