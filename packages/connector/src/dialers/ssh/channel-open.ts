import { SSH_PARAMS, type SshChannelRequest } from "@gatehouse/protocols/ssh";
import type { Client, ClientChannel, PseudoTtyOptions } from "ssh2";
import { ConnectorError, type StreamFailureCode } from "../../errors.js";

// Opening one channel on a session's SSH connection, as the gateway's client asked for it (the
// channel stream's OpenStream params, SSH_PARAMS). A refusal by sshd carries sshd's reason.

export interface SessionChannelParams {
  readonly request: SshChannelRequest;
  /** The client's pty-req, when it asked for a terminal. */
  readonly pty: PseudoTtyOptions | null;
  readonly env: Record<string, string> | null;
}

export interface DirectTcpipParams {
  readonly host: string;
  readonly port: number;
  readonly originHost: string;
  readonly originPort: number;
}

/** Reads a `session` channel stream's params; PROTOCOL_ERROR names the one that is missing or malformed. */
export function sessionChannelParams(params: Readonly<Record<string, string>>): SessionChannelParams {
  const request = params[SSH_PARAMS.request];
  let parsed: SshChannelRequest;
  switch (request) {
    case "exec": {
      const command = params[SSH_PARAMS.command];
      if (command === undefined) throw badParams(`an exec request without ${SSH_PARAMS.command}`);
      parsed = { request, command };
      break;
    }
    case "shell":
      parsed = { request };
      break;
    case "subsystem": {
      const subsystem = params[SSH_PARAMS.subsystem];
      if (!subsystem) throw badParams(`a subsystem request without ${SSH_PARAMS.subsystem}`);
      parsed = { request, subsystem };
      break;
    }
    default:
      throw badParams(`${SSH_PARAMS.request} must be exec, shell or subsystem (got ${JSON.stringify(request ?? null)})`);
  }
  return { request: parsed, pty: ptyParam(params[SSH_PARAMS.pty]), env: envParam(params[SSH_PARAMS.env]) };
}

export function directTcpipParams(params: Readonly<Record<string, string>>): DirectTcpipParams {
  const host = params[SSH_PARAMS.host];
  const port = portParam(params[SSH_PARAMS.port], SSH_PARAMS.port);
  if (!host) throw badParams(`a direct-tcpip channel without ${SSH_PARAMS.host}`);
  return {
    host,
    port,
    originHost: params[SSH_PARAMS.originHost] || "127.0.0.1",
    originPort: params[SSH_PARAMS.originPort] === undefined ? 0 : portParam(params[SSH_PARAMS.originPort], SSH_PARAMS.originPort),
  };
}

/**
 * Opens a session channel with the client's pty and env, then its exec/shell/subsystem. A
 * subsystem gets neither (ssh2's client sends none with it; sftp needs neither).
 */
export function openSessionChannel(client: Client, params: SessionChannelParams, where: string): Promise<ClientChannel> {
  return new Promise((resolve, reject) => {
    const done = (err: Error | undefined, channel: ClientChannel): void => {
      if (err) reject(refusal(err, where, describe(params.request)));
      else resolve(channel);
    };
    const env = params.env ?? undefined;
    try {
      switch (params.request.request) {
        case "exec":
          client.exec(params.request.command, { ...(env ? { env } : {}), ...(params.pty ? { pty: params.pty } : {}) }, done);
          break;
        case "shell":
          client.shell(params.pty ?? false, env ? { env } : {}, done);
          break;
        case "subsystem":
          client.subsys(params.request.subsystem, done);
          break;
      }
    } catch (err) {
      // ssh2 throws "Not connected" when the connection ended between lookup and open.
      reject(new ConnectorError("TARGET_UNREACHABLE", `ssh connection to ${where} is gone: ${(err as Error).message}`, { cause: err }));
    }
  });
}

/** Opens a direct-tcpip channel (`ssh -L`): sshd connects to host:port from the resource's side. */
export function openDirectTcpip(client: Client, params: DirectTcpipParams, where: string): Promise<ClientChannel> {
  return new Promise((resolve, reject) => {
    try {
      client.forwardOut(params.originHost, params.originPort, params.host, params.port, (err, channel) => {
        if (err) reject(refusal(err, where, `a forward to ${params.host}:${params.port}`));
        else resolve(channel);
      });
    } catch (err) {
      reject(new ConnectorError("TARGET_UNREACHABLE", `ssh connection to ${where} is gone: ${(err as Error).message}`, { cause: err }));
    }
  });
}

/** RFC 4254 §5.1 channel-open failure reason codes, as stream codes. */
const OPEN_FAILURE_CODES: Readonly<Record<number, StreamFailureCode>> = {
  1: "TARGET_NOT_ALLOWED", // SSH_OPEN_ADMINISTRATIVELY_PROHIBITED
  2: "TARGET_UNREACHABLE", // SSH_OPEN_CONNECT_FAILED
  3: "PROTOCOL_UNSUPPORTED", // SSH_OPEN_UNKNOWN_CHANNEL_TYPE
  4: "TARGET_UNREACHABLE", // SSH_OPEN_RESOURCE_SHORTAGE
};

/**
 * sshd's refusal as a ConnectorError: a channel-open failure carries a reason code and text; a
 * refused request (pty-req, exec, subsystem) carries none in SSH, so ssh2's "Unable to …" it is.
 */
function refusal(err: Error & { reason?: unknown }, where: string, what: string): ConnectorError {
  if (typeof err.reason === "number") {
    const code = OPEN_FAILURE_CODES[err.reason] ?? "TARGET_UNREACHABLE";
    const text = err.message.replace(/^\(SSH\) Channel open failure: /, "");
    return new ConnectorError(code, `sshd at ${where} refused ${what}: ${text}`, { cause: err });
  }
  if (/No response from server|Not connected/i.test(err.message)) {
    return new ConnectorError("TARGET_UNREACHABLE", `ssh connection to ${where} ended before ${what} was open`, { cause: err });
  }
  return new ConnectorError("PROTOCOL_UNSUPPORTED", `sshd at ${where} refused ${what}: ${err.message}`, { cause: err });
}

function describe(request: SshChannelRequest): string {
  switch (request.request) {
    case "exec":
      return "the exec request";
    case "shell":
      return "the shell request";
    case "subsystem":
      return `the subsystem "${request.subsystem}"`;
  }
}

function ptyParam(text: string | undefined): PseudoTtyOptions | null {
  if (text === undefined || text === "") return null;
  const value = parseJson(text, SSH_PARAMS.pty);
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw badParams(`${SSH_PARAMS.pty} is not a JSON object`);
  const v = value as Record<string, unknown>;
  const num = (k: string): number | undefined => (typeof v[k] === "number" && Number.isInteger(v[k]) && (v[k] as number) >= 0 ? (v[k] as number) : undefined);
  const pty: PseudoTtyOptions = {};
  if (typeof v.term === "string") pty.term = v.term;
  for (const k of ["cols", "rows", "width", "height"] as const) {
    const n = num(k);
    if (n !== undefined) pty[k] = n;
  }
  if (typeof v.modes === "object" && v.modes !== null && !Array.isArray(v.modes)) pty.modes = v.modes as PseudoTtyOptions["modes"];
  return pty;
}

function envParam(text: string | undefined): Record<string, string> | null {
  if (text === undefined || text === "") return null;
  const value = parseJson(text, SSH_PARAMS.env);
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw badParams(`${SSH_PARAMS.env} is not a JSON object`);
  const env: Record<string, string> = {};
  for (const [name, val] of Object.entries(value)) if (typeof val === "string") env[name] = val;
  return Object.keys(env).length > 0 ? env : null;
}

function portParam(text: string | undefined, name: string): number {
  const port = Number(text);
  if (text === undefined || !/^\d+$/.test(text) || port > 65535) throw badParams(`${name} must be a port number (got ${JSON.stringify(text ?? null)})`);
  return port;
}

function parseJson(text: string, name: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw badParams(`${name} is not JSON`);
  }
}

function badParams(what: string): ConnectorError {
  return new ConnectorError("PROTOCOL_ERROR", `ssh channel stream: ${what}`);
}
