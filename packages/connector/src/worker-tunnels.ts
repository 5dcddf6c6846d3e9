import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import type { Multiplexer } from "@gatehouse/proto";
import type { Backoff } from "./backoff.js";
import { TunnelClient, WORKER_TAKEN_STATUS, type TunnelClientEvents, type TunnelClientOptions } from "./tunnel-client.js";

export interface WorkerTunnelsOptions extends Omit<TunnelClientOptions, "backoff" | "instance"> {
  /** A fresh backoff for each link: each reconnects on its own schedule. */
  backoff: () => Backoff;
  /** This process's id at the gateway. Default: a new random one. */
  instance?: string;
}

/**
 * The tunnels to one gateway address. A gateway run with `--workers N` is N processes behind one
 * listening socket, each serving the sessions it accepts through links it holds itself; the upgrade
 * answer says which worker took the link and how many there are. So: one link first, then as many
 * more as the gateway has workers. Each dial reaches the next worker in turn; a worker that already
 * holds a link from this process answers 409 and the dial is repeated at once (tunnel-client.ts).
 * A gateway without workers answers 1 (or nothing): one link, as before.
 */
export class WorkerTunnels extends EventEmitter<TunnelClientEvents> {
  readonly #options: WorkerTunnelsOptions;
  readonly #instance: string;
  readonly #clients: TunnelClient[] = [];
  #started = false;
  #stopped = false;

  constructor(options: WorkerTunnelsOptions) {
    super();
    this.#options = options;
    this.#instance = options.instance ?? randomUUID();
  }

  /** A live link's multiplexer (the first), or null when none is up. */
  get mux(): Multiplexer | null {
    return this.muxes[0] ?? null;
  }

  /** Every live link's multiplexer. */
  get muxes(): Multiplexer[] {
    return this.#clients.map((c) => c.mux).filter((m): m is Multiplexer => m !== null);
  }

  /** How many links this holds or dials: the gateway's worker count once it has said it. */
  get linkCount(): number {
    return this.#clients.length;
  }

  start(): void {
    if (this.#started || this.#stopped) return;
    this.#started = true;
    this.#add();
  }

  async stop(reason: string): Promise<void> {
    this.#stopped = true;
    await Promise.all(this.#clients.map((c) => c.stop(reason)));
  }

  #add(): void {
    const { backoff, instance: _instance, ...rest } = this.#options;
    const client = new TunnelClient({ ...rest, backoff: backoff(), instance: this.#instance });
    this.#clients.push(client);
    client.on("connected", (mux, worker) => {
      this.#want(worker?.count ?? 1);
      this.emit("connected", mux, worker);
    });
    client.on("disconnected", (reason) => this.emit("disconnected", reason));
    client.on("attempt-failed", (info) => {
      // A gateway restarted with fewer workers: the surplus links would only ever hear 409.
      if (info.status === WORKER_TAKEN_STATUS && info.worker && this.#clients.length > info.worker.count && client.mux === null) {
        this.#clients.splice(this.#clients.indexOf(client), 1);
        void client.stop("the gateway has fewer workers");
        return;
      }
      if (info.worker) this.#want(info.worker.count);
      this.emit("attempt-failed", info);
    });
    client.start();
  }

  /** Holds `count` links: more when the gateway has more workers, fewer (those not up) when it has fewer. */
  #want(count: number): void {
    while (!this.#stopped && this.#clients.length < count) this.#add();
    for (const surplus of this.#clients.filter((c) => c.mux === null).slice(0, Math.max(0, this.#clients.length - count))) {
      this.#clients.splice(this.#clients.indexOf(surplus), 1);
      void surplus.stop("the gateway has fewer workers");
    }
  }
}
