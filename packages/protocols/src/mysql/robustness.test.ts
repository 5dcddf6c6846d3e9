/**
 * Random and truncated input at every phase of both handshakes: the only failure allowed is a
 * `MysqlProtocolError` (which the caller turns into an ERR packet); never another exception.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Capability } from "./constants.js";
import { MysqlProtocolError } from "./errors.js";
import { ClientHandshake } from "./client-handshake.js";
import { encodePacket } from "./framing.js";
import { encodeHandshakeResponse41, encodeHandshakeV10 } from "./packets.js";
import { ServerLogin } from "./server-login.js";
import { nativePasswordVerifier } from "./auth/native-password.js";

const CAPS =
  Capability.CLIENT_PROTOCOL_41 |
  Capability.CLIENT_SECURE_CONNECTION |
  Capability.CLIENT_PLUGIN_AUTH |
  Capability.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA |
  Capability.CLIENT_CONNECT_WITH_DB |
  Capability.CLIENT_CONNECT_ATTRS |
  Capability.CLIENT_SSL;
const scramble = Uint8Array.from({ length: 20 }, (_, i) => i + 1);

function onlyCodedErrors(run: () => void): void {
  try {
    run();
  } catch (error) {
    if (!(error instanceof MysqlProtocolError)) throw error;
    expect(error.errno).toBeGreaterThan(0);
    expect(error.sqlState).toMatch(/^[0-9A-Z]{5}$/);
  }
}

/** Random payloads, sometimes starting with the byte that selects a packet kind. */
const payload = fc.oneof(
  fc.uint8Array({ maxLength: 80 }),
  fc.tuple(fc.constantFrom(0x00, 0x01, 0xfe, 0xff, 0x0a), fc.uint8Array({ maxLength: 80 })).map(([first, rest]) => Uint8Array.of(first, ...rest)),
);

describe("handshakes under random input", () => {
  const login = encodePacket(
    1,
    encodeHandshakeResponse41({
      capabilities: CAPS & ~Capability.CLIENT_SSL,
      mariadbCapabilities: 0,
      maxPacketSize: 1 << 24,
      characterSet: 45,
      username: "u",
      authResponse: scramble,
      database: "app",
      authPluginName: "caching_sha2_password",
      attributes: [["a", "b"]],
    }),
  );

  it("ClientHandshake: random bytes at the response, the password and the native-token phases", () => {
    fc.assert(
      fc.property(payload, fc.nat(3), fc.uint8Array({ maxLength: 12 }), (body, phase, raw) => {
        const hs = new ClientHandshake({ serverVersion: "8.0.36", connectionId: 1, capabilities: CAPS, scramble });
        hs.start();
        onlyCodedErrors(() => {
          if (phase >= 1) {
            hs.push(login);
            hs.next();
            if (phase === 1) hs.requestPassword();
            else hs.checkNativePassword([nativePasswordVerifier("k")]);
          }
          hs.push(encodePacket(phase === 0 ? 1 : 3, body));
          hs.push(raw);
          for (let i = 0; i < 5 && hs.next() !== undefined; i++);
        });
      }),
      { numRuns: 2000 },
    );
  });

  it("ServerLogin: random greetings, and random packets after a valid greeting", () => {
    const greeting = encodePacket(
      0,
      encodeHandshakeV10({ serverVersion: "8.0.36", connectionId: 1, scramble, capabilities: CAPS, mariadbCapabilities: 0, characterSet: 45, statusFlags: 2, authPluginName: "caching_sha2_password" }),
    );
    fc.assert(
      fc.property(payload, fc.boolean(), fc.uint8Array({ maxLength: 12 }), (body, afterGreeting, raw) => {
        const login = new ServerLogin({ user: "u", password: "p", tls: "prefer", requestServerPublicKey: true });
        onlyCodedErrors(() => {
          if (afterGreeting) {
            login.push(greeting);
            for (let e = login.next(); e !== undefined; e = login.next()) if (e.type === "startTls") login.tlsEstablished();
          }
          login.push(encodePacket(afterGreeting ? 3 : 0, body));
          login.push(raw);
          for (let i = 0; i < 5 && login.next() !== undefined; i++);
        });
      }),
      { numRuns: 2000 },
    );
  });

  it("truncating a valid login at every byte never throws anything but a coded error", () => {
    for (let cut = 4; cut < login.byteLength; cut++) {
      const hs = new ClientHandshake({ serverVersion: "8.0.36", connectionId: 1, capabilities: CAPS, scramble });
      hs.start();
      const truncated = login.slice(0, cut);
      // Declare the truncated length so the packet is "complete" but its fields are cut short.
      truncated[0] = (cut - 4) & 0xff;
      truncated[1] = 0;
      truncated[2] = 0;
      hs.push(truncated);
      onlyCodedErrors(() => void hs.next());
    }
  });
});
