/**
 * Both handshakes against each other in memory (ServerLogin plays the client, ClientHandshake
 * the server), plus ServerLogin against scripted caching_sha2_password servers, whose answers
 * are checked with the server-side formulas.
 */
import { createHash, generateKeyPairSync, privateDecrypt, constants as cryptoConstants } from "node:crypto";
import { describe, expect, it } from "vitest";
import { concatBytes } from "./bytes.js";
import { AuthPlugin, Capability, ServerStatus } from "./constants.js";
import { MysqlProtocolError } from "./errors.js";
import { ClientHandshake, type ClientHandshakeEvent, type GreetingOptions } from "./client-handshake.js";
import { PacketReader, encodePacket } from "./framing.js";
import { decodeErrPacket, decodeOkPacket, encodeAuthMoreData, encodeHandshakeResponse41, encodeHandshakeV10, encodeOkPacket, decodeHandshakeResponse41 } from "./packets.js";
import { ServerLogin, type ServerLoginEvent, type ServerLoginOptions } from "./server-login.js";
import { nativePasswordVerifier } from "./auth/native-password.js";

const scramble = Uint8Array.from({ length: 20 }, (_, i) => 0x41 + i);
const CAPS =
  Capability.CLIENT_LONG_PASSWORD |
  Capability.CLIENT_PROTOCOL_41 |
  Capability.CLIENT_SECURE_CONNECTION |
  Capability.CLIENT_PLUGIN_AUTH |
  Capability.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA |
  Capability.CLIENT_CONNECT_WITH_DB |
  Capability.CLIENT_CONNECT_ATTRS |
  Capability.CLIENT_TRANSACTIONS |
  Capability.CLIENT_DEPRECATE_EOF |
  Capability.CLIENT_COMPRESS;

interface Verdict {
  gatewayEvents: ClientHandshakeEvent[];
  clientEvents: ServerLoginEvent[];
  /** Bytes the "client" (ServerLogin) received, in order. */
  toClient: Uint8Array[];
}

/**
 * Run a login between the two machines. `decide` answers the gateway's events (what the
 * listener would do). Every byte the client sends reaches the gateway split in two at `cut`.
 */
function converse(
  greeting: GreetingOptions,
  login: ServerLoginOptions,
  decide: (event: ClientHandshakeEvent, gateway: ClientHandshake) => Uint8Array | undefined,
  cut = 1,
): Verdict {
  const gateway = new ClientHandshake(greeting);
  const client = new ServerLogin(login);
  const result: Verdict = { gatewayEvents: [], clientEvents: [], toClient: [] };
  let toClient: Uint8Array[] = [gateway.start()];
  for (let round = 0; round < 20 && toClient.length > 0; round++) {
    const toGateway: Uint8Array[] = [];
    for (const bytes of toClient) {
      result.toClient.push(bytes);
      client.push(bytes);
    }
    toClient = [];
    for (let e = client.next(); e; e = client.next()) {
      result.clientEvents.push(e);
      if (e.type === "write") toGateway.push(e.bytes);
      if (e.type === "startTls") toGateway.push(client.tlsEstablished());
    }
    for (const bytes of toGateway) {
      const at = Math.min(cut, bytes.byteLength);
      gateway.push(bytes.subarray(0, at));
      drain();
      gateway.push(bytes.subarray(at));
      drain();
    }
  }
  return result;

  function drain(): void {
    for (let e = gateway.next(); e; e = gateway.next()) {
      result.gatewayEvents.push(e);
      if (e.type === "write") toClient.push(e.bytes);
      else if (e.type === "sslRequest") gateway.acceptTls();
      else {
        const reply = decide(e, gateway);
        if (reply) toClient.push(reply);
      }
    }
  }
}

const greeting: GreetingOptions = { serverVersion: "5.5.5-10.11.19-MariaDB", connectionId: 7, capabilities: CAPS & ~Capability.CLIENT_COMPRESS, scramble };

describe("ClientHandshake ↔ ServerLogin", () => {
  it("native password: login names identity and connection, the token checks against the verifier, OK ends it (split at every offset)", () => {
    for (let cut = 0; cut < 120; cut += 1) {
      const { gatewayEvents, clientEvents } = converse(greeting, { user: "copilot-agent", password: "key-1", database: "app", tls: "disable", clientCapabilities: CAPS }, (event, gw) => {
        if (event.type === "login") return gw.checkNativePassword([nativePasswordVerifier("other"), nativePasswordVerifier("key-1")]);
        if (event.type === "authenticated") return gw.complete({ statusFlags: ServerStatus.SERVER_STATUS_AUTOCOMMIT });
        return undefined;
      }, cut);
      const login = gatewayEvents.find((e) => e.type === "login");
      expect(login).toMatchObject({ user: "copilot-agent", database: "app", tls: false, authPluginName: "mysql_native_password" });
      expect(login?.type === "login" && (login.capabilities & Capability.CLIENT_COMPRESS)).toBe(0);
      expect(gatewayEvents.find((e) => e.type === "authenticated")).toMatchObject({ verifier: 1 });
      expect(clientEvents.at(-1)).toMatchObject({ type: "ready", connectionId: 7, serverVersion: "5.5.5-10.11.19-MariaDB", sequenceId: 2 });
    }
  });

  it("wrong key: authenticationFailed, and fail() sends 1045/28000 with the next sequence id", () => {
    const { gatewayEvents, clientEvents } = converse(greeting, { user: "u", password: "nope", tls: "disable" }, (event, gw) => {
      if (event.type === "login") return gw.checkNativePassword([nativePasswordVerifier("key-1")]);
      if (event.type === "authenticationFailed") return gw.fail({ errno: 1045, sqlState: "28000", message: "Access denied for user 'u'" });
      return undefined;
    });
    expect(gatewayEvents.at(-1)).toMatchObject({ type: "authenticationFailed" });
    expect(clientEvents.at(-1)).toMatchObject({ type: "failed", error: { errno: 1045, sqlState: "28000" } });
  });

  it("switches a client that started with caching_sha2_password to mysql_native_password", () => {
    const { gatewayEvents, clientEvents, toClient } = converse(
      { ...greeting, authPluginName: AuthPlugin.CACHING_SHA2_PASSWORD },
      { user: "u", password: "key-1", tls: "disable" },
      (event, gw) => {
        if (event.type === "login") return gw.checkNativePassword([nativePasswordVerifier("key-1")]);
        if (event.type === "authenticated") return gw.complete();
        return undefined;
      },
    );
    expect(gatewayEvents.find((e) => e.type === "login")).toMatchObject({ authPluginName: "caching_sha2_password" });
    expect(toClient[1]![3]).toBe(2); // AuthSwitchRequest is sequence 2
    expect(clientEvents.at(-1)).toMatchObject({ type: "ready", authPlugin: "mysql_native_password", sequenceId: 4 });
  });

  it("over TLS, caching_sha2_password full authentication hands the gateway the cleartext key", () => {
    const { gatewayEvents, clientEvents } = converse(
      { ...greeting, capabilities: greeting.capabilities | Capability.CLIENT_SSL, authPluginName: AuthPlugin.CACHING_SHA2_PASSWORD },
      { user: "u", password: "oidc.token.value", database: "app" },
      (event, gw) => {
        if (event.type === "login") return gw.requestPassword();
        if (event.type === "password") return gw.complete();
        return undefined;
      },
    );
    expect(gatewayEvents.map((e) => e.type)).toEqual(["sslRequest", "login", "password"]);
    expect(gatewayEvents[1]).toMatchObject({ tls: true, database: "app" });
    expect(gatewayEvents[2]).toMatchObject({ password: "oidc.token.value", plugin: "caching_sha2_password" });
    // greeting 0, SSLRequest 1, response 2, AuthMoreData 0x04 3, password 4, OK 5.
    expect(clientEvents.at(-1)).toMatchObject({ type: "ready", tls: true, sequenceId: 5 });
  });

  it("over TLS, a native-password client is switched to mysql_clear_password, or to caching_sha2_password when asked", () => {
    for (const switchTo of [AuthPlugin.MYSQL_CLEAR_PASSWORD, AuthPlugin.CACHING_SHA2_PASSWORD] as const) {
      const { gatewayEvents, clientEvents } = converse(
        { ...greeting, capabilities: greeting.capabilities | Capability.CLIENT_SSL },
        { user: "u", password: "k" },
        (event, gw) => {
          if (event.type === "login") return gw.requestPassword({ switchTo });
          if (event.type === "password") return gw.complete();
          return undefined;
        },
      );
      expect(gatewayEvents.find((e) => e.type === "password")).toMatchObject({ password: "k", plugin: switchTo });
      expect(clientEvents.at(-1)).toMatchObject({ type: "ready", authPlugin: switchTo });
    }
  });

  it("the connector never sends the password in cleartext without TLS", () => {
    expect(() =>
      converse(greeting, { user: "u", password: "k", tls: "disable" }, (event, gw) => (event.type === "login" ? gw.requestPassword() : undefined)),
    ).toThrow(expect.objectContaining({ code: "TLS_REQUIRED" }));
  });
});

describe("ClientHandshake refusals", () => {
  function started(options: Partial<GreetingOptions> = {}): ClientHandshake {
    const gw = new ClientHandshake({ ...greeting, ...options });
    gw.start();
    return gw;
  }

  it("an ERR before the greeting has sequence id 0; after the login, the next one", () => {
    const early = new ClientHandshake(greeting).fail({ errno: 1040, sqlState: "08004", message: "Too many connections" });
    expect(early[3]).toBe(0);
    const gw = started();
    const client = new ServerLogin({ user: "u", password: "k", tls: "disable" });
    client.push(encodePacket(0, encodeHandshakeV10({ ...greeting, scramble, mariadbCapabilities: 0, characterSet: 45, statusFlags: 2, authPluginName: "mysql_native_password", capabilities: CAPS })));
    const write = client.next();
    gw.push(write?.type === "write" ? write.bytes : new Uint8Array(0));
    expect(gw.next()).toMatchObject({ type: "login" });
    const err = gw.fail(new MysqlProtocolError("AUTH_FAILED", "no such identity"));
    expect(err[3]).toBe(2);
    expect(decodeErrPacket(err.subarray(4))).toEqual({ errno: 1045, sqlState: "28000", message: "Access denied" });
  });

  it("garbage, a wrong sequence id, an oversize packet and plaintext after SSLRequest give coded errors", () => {
    const garbage = started();
    garbage.push(encodePacket(1, Uint8Array.of(1, 2, 3)));
    expect(() => garbage.next()).toThrow(expect.objectContaining({ code: "PROTOCOL_VIOLATION", errno: 1043 }));

    const outOfOrder = started();
    outOfOrder.push(encodePacket(5, new Uint8Array(40)));
    expect(() => outOfOrder.next()).toThrow(expect.objectContaining({ code: "PACKETS_OUT_OF_ORDER", errno: 1156 }));

    const huge = started();
    huge.push(Uint8Array.of(0xff, 0xff, 0xff, 1));
    expect(() => huge.next()).toThrow(expect.objectContaining({ code: "PACKET_TOO_LARGE", errno: 1153 }));

    const injected = started({ capabilities: greeting.capabilities | Capability.CLIENT_SSL });
    const ssl = new Uint8Array(32);
    new DataView(ssl.buffer).setUint32(0, CAPS | Capability.CLIENT_SSL, true);
    injected.push(concatBytes([encodePacket(1, ssl), encodePacket(2, Uint8Array.of(3, 0x53))]));
    expect(injected.next()).toEqual({ type: "sslRequest" });
    expect(() => injected.acceptTls()).toThrow(expect.objectContaining({ code: "PROTOCOL_VIOLATION" }));
  });

  it("an SSLRequest when the greeting offered no TLS is a violation; a ClientHello after one goes to TLS", () => {
    const ssl = new Uint8Array(32);
    new DataView(ssl.buffer).setUint32(0, CAPS | Capability.CLIENT_SSL, true);
    const noTls = started();
    noTls.push(encodePacket(1, ssl));
    expect(() => noTls.next()).toThrow(MysqlProtocolError);

    const tls = started({ capabilities: greeting.capabilities | Capability.CLIENT_SSL });
    tls.push(concatBytes([encodePacket(1, ssl), Uint8Array.of(0x16, 3, 1)]));
    expect(tls.next()).toEqual({ type: "sslRequest" });
    expect(concatBytes(tls.acceptTls())).toEqual(Uint8Array.of(0x16, 3, 1));
  });

  it("refuses to switch the method of a client without CLIENT_PLUGIN_AUTH (1251/08004), with the ERR in sequence", () => {
    const gw = started();
    gw.push(
      encodePacket(
        1,
        encodeHandshakeResponse41({
          capabilities: Capability.CLIENT_PROTOCOL_41 | Capability.CLIENT_SECURE_CONNECTION,
          mariadbCapabilities: 0,
          maxPacketSize: 1 << 24,
          characterSet: 33,
          username: "u",
          authResponse: new Uint8Array(20),
          database: undefined,
          authPluginName: "",
          attributes: [],
        }),
      ),
    );
    expect(gw.next()).toMatchObject({ type: "login", authPluginName: "mysql_native_password" });
    let error: unknown;
    try {
      gw.requestPassword();
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: "UNSUPPORTED_AUTH", errno: 1251, sqlState: "08004" });
    const err = gw.fail(error as MysqlProtocolError);
    expect(err[3]).toBe(2);
  });

  it("hands the first command on after complete()", () => {
    const gw = new ClientHandshake(greeting);
    const client = new ServerLogin({ user: "u", password: "k", tls: "disable" });
    client.push(gw.start());
    const write = client.next();
    const command = encodePacket(0, Uint8Array.of(3, 0x31));
    gw.push(concatBytes([write?.type === "write" ? write.bytes : new Uint8Array(0), command]));
    gw.next();
    gw.checkNativePassword([nativePasswordVerifier("k")]);
    expect(gw.next()).toMatchObject({ type: "authenticated" });
    const ok = gw.complete({ statusFlags: 2 });
    expect(ok[3]).toBe(2);
    expect(decodeOkPacket(ok.subarray(4), CAPS).statusFlags).toBe(2);
    expect(concatBytes(gw.remaining())).toEqual(command);
  });
});

describe("ServerLogin with caching_sha2_password (scripted MySQL 8 server)", () => {
  const sha256 = (...parts: Uint8Array[]) => {
    const h = createHash("sha256");
    for (const p of parts) h.update(p);
    return new Uint8Array(h.digest());
  };
  const mysqlGreeting = encodePacket(
    0,
    encodeHandshakeV10({ serverVersion: "8.0.36", connectionId: 9, scramble, capabilities: CAPS, mariadbCapabilities: 0, characterSet: 255, statusFlags: 2, authPluginName: "caching_sha2_password" }),
  );

  function firstWrite(login: ServerLogin, bytes: Uint8Array): Uint8Array {
    login.push(bytes);
    const event = login.next();
    if (event?.type !== "write") throw new Error(`expected a write, got ${event?.type}`);
    return event.bytes;
  }

  it("fast path: the token verifies with the server's check, and 0x03 then OK makes it ready", () => {
    const login = new ServerLogin({ user: "app", password: "pässword", tls: "disable" });
    const response = decodeHandshakeResponse41(firstWrite(login, mysqlGreeting).subarray(4));
    expect(response.authPluginName).toBe("caching_sha2_password");
    // Server side: stored = SHA256(SHA256(pw)); SHA256(token XOR SHA256(stored ‖ scramble)) must equal stored.
    const stored = sha256(sha256(new TextEncoder().encode("pässword")));
    const mask = sha256(stored, scramble);
    const stage1 = response.authResponse.map((b, i) => b ^ mask[i]!);
    expect(sha256(stage1)).toEqual(stored);
    login.push(concatBytes([encodePacket(2, encodeAuthMoreData(Uint8Array.of(3))), encodePacket(3, encodeOkPacket({ statusFlags: 2 }, CAPS))]));
    expect(login.next()).toMatchObject({ type: "ready", authPlugin: "caching_sha2_password", serverVersion: "8.0.36", sequenceId: 3 });
  });

  it("full authentication without TLS: asks for the RSA key (when allowed) and sends RSA-OAEP((password+NUL) XOR scramble)", () => {
    const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const login = new ServerLogin({ user: "app", password: "pässword", tls: "disable", requestServerPublicKey: true });
    firstWrite(login, mysqlGreeting);
    const request = firstWrite(login, encodePacket(2, encodeAuthMoreData(Uint8Array.of(4))));
    expect([...request]).toEqual([1, 0, 0, 3, 2]);
    const pem = publicKey.export({ type: "spki", format: "pem" }) as string;
    const encrypted = firstWrite(login, encodePacket(4, encodeAuthMoreData(new TextEncoder().encode(pem))));
    expect(encrypted[3]).toBe(5);
    const plain = privateDecrypt({ key: privateKey, padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha1" }, encrypted.subarray(4));
    const unmasked = plain.map((b, i) => b ^ scramble[i % 20]!);
    expect(Buffer.from(unmasked).toString("utf8")).toBe("pässword\0");
  });

  it("never asks the server for compression or query attributes, whatever it is given", () => {
    const login = new ServerLogin({
      user: "app",
      tls: "disable",
      clientCapabilities: CAPS | Capability.CLIENT_COMPRESS | Capability.CLIENT_QUERY_ATTRIBUTES | Capability.CLIENT_ZSTD_COMPRESSION_ALGORITHM,
    });
    const everything = encodePacket(
      0,
      encodeHandshakeV10({ serverVersion: "8.0.36", connectionId: 9, scramble, capabilities: 0xffffffff & ~Capability.CLIENT_SSL, mariadbCapabilities: 0, characterSet: 255, statusFlags: 2, authPluginName: "mysql_native_password" }),
    );
    const sent = decodeHandshakeResponse41(firstWrite(login, everything).subarray(4)).capabilities;
    expect(sent & (Capability.CLIENT_COMPRESS | Capability.CLIENT_QUERY_ATTRIBUTES | Capability.CLIENT_ZSTD_COMPRESSION_ALGORITHM)).toBe(0);
    expect(sent & Capability.CLIENT_DEPRECATE_EOF).toBe(Capability.CLIENT_DEPRECATE_EOF);
  });

  it("full authentication without TLS and without a key is refused rather than sent in the clear", () => {
    const login = new ServerLogin({ user: "app", password: "x", tls: "disable" });
    firstWrite(login, mysqlGreeting);
    login.push(encodePacket(2, encodeAuthMoreData(Uint8Array.of(4))));
    expect(() => login.next()).toThrow(expect.objectContaining({ code: "TLS_REQUIRED" }));
  });

  it("a server ERR in place of the greeting, and packets out of order, are reported with codes", () => {
    const refused = new ServerLogin({ user: "app" });
    refused.push(encodePacket(0, Uint8Array.of(0xff, 0x10, 0x04, ...new TextEncoder().encode("#08004Too many connections"))));
    expect(refused.next()).toEqual({ type: "failed", error: { errno: 1040, sqlState: "08004", message: "Too many connections" } });

    const disordered = new ServerLogin({ user: "app", tls: "disable" });
    firstWrite(disordered, mysqlGreeting);
    disordered.push(encodePacket(7, encodeOkPacket({}, CAPS)));
    expect(() => disordered.next()).toThrow(expect.objectContaining({ code: "PACKETS_OUT_OF_ORDER" }));
  });

  it("feeding the greeting split at every offset gives the same answer", () => {
    const whole = decodeHandshakeResponse41(firstWrite(new ServerLogin({ user: "app", password: "p", tls: "disable" }), mysqlGreeting).subarray(4));
    for (let cut = 0; cut <= mysqlGreeting.byteLength; cut++) {
      const login = new ServerLogin({ user: "app", password: "p", tls: "disable" });
      login.push(mysqlGreeting.subarray(0, cut));
      const early = login.next();
      if (cut < mysqlGreeting.byteLength) expect(early).toBeUndefined();
      login.push(mysqlGreeting.subarray(cut));
      const event = early ?? login.next();
      expect(event?.type === "write" && decodeHandshakeResponse41(event.bytes.subarray(4))).toEqual(whole);
    }
    expect(new PacketReader().read()).toBeUndefined();
  });
});
