import type { OpenStream } from "@gatehouse/proto";
import { HostKeyPinError, fingerprint, matches, parseHostKeyPin, pinnedFingerprints, type HostKeyPin } from "@gatehouse/protocols/ssh";
import ssh2, { type AuthenticationType, type Client, type ConnectConfig, type ParsedKey } from "ssh2";
import { ConnectorError } from "../../errors.js";
import { connectTcp, formatTarget } from "../tcp/tcp-dialer.js";
import type { DialContext } from "../types.js";
import { readServerIdent } from "./server-ident.js";

// ssh2 is CommonJS: under plain Node ESM only its default export is there (vitest would hide a named import failing).
const { utils } = ssh2;

// The connector's SSH login to the resource: TCP, the server's identification, key exchange with
// the host key checked against the connection's pin (before any credential is sent), then the
// connection's own credential. The client never sees the credential; the gateway never holds it.

const DEFAULT_PORT = 22;
/** Keepalives on the resource connection: an idle shell survives NAT, a dead sshd is noticed in about a minute. */
const KEEPALIVE_INTERVAL_MS = 15_000;
const KEEPALIVE_COUNT_MAX = 4;

/** ssh2's host key algorithms, best first (its DEFAULT_SERVER_HOST_KEY); a pin's own types go in front. */
const HOST_KEY_ALGORITHMS = [
  "ssh-ed25519",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "rsa-sha2-512",
  "rsa-sha2-256",
  "ssh-rsa",
] as const;

export interface SshLogin {
  readonly client: Client;
  /** The server's identification string, e.g. "SSH-2.0-OpenSSH_9.2p1 Debian-2". */
  readonly serverVersion: string;
  /** The host key the server proved, "SHA256:…". */
  readonly hostKey: string;
}

/** What to log in with, resolved on the connector. */
export interface SshCredential {
  readonly user: string;
  /** OpenSSH or PEM private key text, or null. */
  readonly privateKey: string | null;
  readonly password: string | null;
}

/**
 * Connects to `open.target` and logs in under one deadline. Refusals are ConnectorErrors: a host
 * key that is not pinned or does not match (AUTH_FAILED, naming both fingerprints), credentials
 * sshd refuses (AUTH_FAILED, with the methods it would accept), an unreachable or non-SSH target.
 */
export async function logIn(open: OpenStream, credential: SshCredential, ctx: DialContext): Promise<SshLogin> {
  const host = open.target?.host ?? "";
  const port = open.target?.port || DEFAULT_PORT;
  const where = formatTarget(host, port);
  const pin = readPin(open.target?.options?.hostKey, where);
  const key = credential.privateKey === null ? undefined : parsePrivateKey(credential.privateKey, open.target?.options?.privateKey ?? "");
  if (key === undefined && credential.password === null) {
    throw new ConnectorError("CREDENTIAL_UNAVAILABLE", `ssh connection to ${where} has no credential: set target.privateKey and/or credential.password`);
  }

  const socket = await connectTcp(host, port, ctx);
  // connectTcp keeps sockets half-open for byte relays; an SSH connection has no use for a half:
  // when sshd closes its side (an idle timeout, a killed session) ours must close too, or the
  // connection and its lifeline would never end.
  socket.allowHalfOpen = false;
  const deadline = AbortSignal.any([ctx.signal, AbortSignal.timeout(ctx.timeoutMs)]);
  let serverVersion: string;
  try {
    serverVersion = await readServerIdent(socket, deadline, where);
  } catch (err) {
    socket.destroy();
    throw err;
  }

  const client = new ssh2.Client();
  let hostKeyRefusal: ConnectorError | undefined;
  let presented = "";
  const methods = plannedMethods(key !== undefined, credential.password !== null);
  const tried: AuthenticationType[] = [];
  let serverMethods: string[] | null = null;

  const config: ConnectConfig = {
    sock: socket,
    username: credential.user,
    readyTimeout: 0, // the deadline below covers the whole login
    keepaliveInterval: KEEPALIVE_INTERVAL_MS,
    keepaliveCountMax: KEEPALIVE_COUNT_MAX,
    ...hostKeyAlgorithms(pin),
    hostVerifier: (blob: Buffer): boolean => {
      presented = fingerprint(blob);
      if (pin !== null && matches(pin, blob)) return true;
      hostKeyRefusal = new ConnectorError(
        "AUTH_FAILED",
        pin === null
          ? `ssh connection to ${where} has no pinned host key (target.hostKey), and the connector never trusts a key on first use; the server presented ${presented}: pin it after checking it out of band`
          : `host key mismatch for ${where}: expected ${pinnedFingerprints(pin).join(" or ")}, the server presented ${presented}; refusing to log in (the key changed, or someone is in between)`,
      );
      return false;
    },
    authHandler: (methodsLeft, _partialSuccess, next) => {
      if (methodsLeft !== null) serverMethods = methodsLeft;
      const method = methods.find((m) => !tried.includes(m) && (serverMethods === null || serverMethods.includes(m)));
      if (method === undefined) return false;
      tried.push(method);
      switch (method) {
        case "publickey":
          next({ type: "publickey", username: credential.user, key: key! });
          return undefined;
        case "password":
          next({ type: "password", username: credential.user, password: credential.password! });
          return undefined;
        case "keyboard-interactive":
          next({
            type: "keyboard-interactive",
            username: credential.user,
            // PAM's password prompt (echo off); anything it asks with echo on is not ours to answer.
            prompt: (_name, _instructions, _lang, prompts, finish) => finish(prompts.map((p) => (p.echo ? "" : credential.password!))),
          });
          return undefined;
        default:
          return false;
      }
    },
  };

  return new Promise<SshLogin>((resolve, reject) => {
    const settle = (error: ConnectorError | null): void => {
      deadline.removeEventListener("abort", onAbort);
      client.off("ready", onReady);
      client.off("error", onError);
      client.off("close", onClose);
      if (error === null) {
        resolve({ client, serverVersion, hostKey: presented });
        return;
      }
      // Errors after this (the socket closing) have no one to tell.
      client.on("error", () => {});
      client.end();
      socket.destroy();
      reject(error);
    };
    const onReady = (): void => settle(null);
    const onError = (err: Error & { level?: string }): void => {
      if (hostKeyRefusal !== undefined) return settle(hostKeyRefusal);
      if (err.level === "client-authentication") {
        const accepts = serverMethods === null ? "" : `; it accepts: ${serverMethods.join(", ")}`;
        return settle(
          new ConnectorError(
            "AUTH_FAILED",
            `sshd at ${where} refused user "${credential.user}" (tried: ${tried.length > 0 ? tried.join(", ") : "nothing it accepts"}${accepts})`,
          ),
        );
      }
      settle(new ConnectorError("PROTOCOL_ERROR", `ssh login to ${where} failed: ${err.message}`, { cause: err }));
    };
    const onClose = (): void =>
      settle(hostKeyRefusal ?? new ConnectorError("TARGET_UNREACHABLE", `${where} closed the connection during the ssh login`));
    const onAbort = (): void =>
      settle(
        deadline.reason instanceof DOMException && deadline.reason.name === "TimeoutError"
          ? new ConnectorError("TARGET_UNREACHABLE", `ssh login to ${where} did not finish within ${ctx.timeoutMs} ms`)
          : new ConnectorError("TARGET_UNREACHABLE", `dial to ${where} cancelled`, { cause: deadline.reason }),
      );
    client.once("ready", onReady);
    client.on("error", onError);
    client.once("close", onClose);
    if (deadline.aborted) return onAbort();
    deadline.addEventListener("abort", onAbort, { once: true });
    try {
      client.connect(config);
    } catch (err) {
      settle(new ConnectorError("PROTOCOL_ERROR", `ssh login to ${where} failed: ${(err as Error).message}`, { cause: err }));
    }
  });
}

function readPin(text: string | undefined, where: string): HostKeyPin | null {
  if (text === undefined || text.trim() === "") return null;
  try {
    return parseHostKeyPin(text);
  } catch (err) {
    if (err instanceof HostKeyPinError) {
      throw new ConnectorError("AUTH_FAILED", `ssh connection to ${where}: target.hostKey is not usable: ${err.message}`, { cause: err });
    }
    throw err;
  }
}

/** The private key, checked before connecting so a bad key costs no connection; the message names the reference, never the key. */
function parsePrivateKey(text: string, ref: string): ParsedKey {
  const parsed = utils.parseKey(text);
  const key: ParsedKey | Error | undefined = Array.isArray(parsed) ? (parsed as ParsedKey[])[0] : parsed;
  if (key === undefined || key instanceof Error) {
    const why = key instanceof Error ? key.message : "no key in it";
    const hint = /encrypted|passphrase/i.test(why) ? " (keys with a passphrase are not supported: store it unencrypted, readable by the connector only)" : "";
    throw new ConnectorError("CREDENTIAL_UNAVAILABLE", `credential "${ref}": not a private key ssh can use: ${why}${hint}`);
  }
  if (!key.isPrivateKey()) throw new ConnectorError("CREDENTIAL_UNAVAILABLE", `credential "${ref}": holds a public key, not a private key`);
  return key;
}

/** The methods to try, in order: the key first (it proves more), then the password, as PAM would ask for it too. */
function plannedMethods(hasKey: boolean, hasPassword: boolean): AuthenticationType[] {
  return [...(hasKey ? (["publickey"] as const) : []), ...(hasPassword ? (["password", "keyboard-interactive"] as const) : [])];
}

/** Offer the pinned key types first, as OpenSSH does for hosts in known_hosts, so a host with several keys proves the pinned one. */
function hostKeyAlgorithms(pin: HostKeyPin | null): Pick<ConnectConfig, "algorithms"> {
  if (pin === null || pin.keys.length === 0) return {};
  const pinned = new Set<string>();
  for (const { type } of pin.keys) {
    if (type === "ssh-rsa") ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"].forEach((a) => pinned.add(a));
    else if ((HOST_KEY_ALGORITHMS as readonly string[]).includes(type)) pinned.add(type);
  }
  if (pinned.size === 0) return {};
  const order = [...pinned, ...HOST_KEY_ALGORITHMS.filter((a) => !pinned.has(a))];
  return { algorithms: { serverHostKey: order as ConnectConfig["algorithms"] extends { serverHostKey?: infer T } ? T : never } };
}
