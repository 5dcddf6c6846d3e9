// One of every frame kind, for codec tests (test code, outside the build).
import {
  Close,
  ConnectorFrame,
  GatewayFrame,
  type IConnectorFrame,
  type IGatewayFrame,
  StreamFailed,
} from "../src/messages.js";

export const gatewayFrames: IGatewayFrame[] = [
  {
    open: {
      streamId: 7,
      sessionId: "ses_01",
      connection: "app",
      protocol: "postgres",
      target: { host: "db.internal", port: 5432, options: { database: "app", tls: "require" } },
      credential: { user: "app_ro", passwordRef: "env:APP_RO_PASSWORD" },
      params: { application_name: "psql" },
      initialWindow: 262_144,
    },
  },
  { data: { streamId: 7, payload: Uint8Array.from({ length: 300 }, (_, i) => i & 0xff) } },
  { data: { streamId: 9, payload: new Uint8Array(0) } },
  { windowUpdate: { streamId: 7, credit: 65_536 } },
  { close: { streamId: 7, kind: Close.Kind.END } },
  { close: { streamId: 9, kind: Close.Kind.ERROR, message: "client went away" } },
  { ping: { nonce: 2 ** 40 + 3 } },
  { pong: { nonce: 1 } },
];

export const connectorFrames: IConnectorFrame[] = [
  {
    opened: {
      streamId: 7,
      initialWindow: 1_048_576,
      params: { server_version: "16.4" },
      handshake: Uint8Array.of(0x4b, 0, 0, 0, 12),
    },
  },
  { failed: { streamId: 9, code: StreamFailed.Code.TARGET_NOT_ALLOWED, message: "db.internal:5432 not allowed" } },
  { data: { streamId: 7, payload: Uint8Array.from({ length: 2_000 }, (_, i) => (i * 7) & 0xff) } },
  { windowUpdate: { streamId: 7, credit: 1 } },
  { close: { streamId: 7, kind: Close.Kind.RESET } },
  { ping: { nonce: 5 } },
  { pong: { nonce: 2 ** 40 + 3 } },
  { drain: {} },
];

export const encodeGateway = (frame: IGatewayFrame): Uint8Array => GatewayFrame.encode(frame).finish();
export const encodeConnector = (frame: IConnectorFrame): Uint8Array => ConnectorFrame.encode(frame).finish();

/** The decoded message as JSON (bytes in base64), for cheap exact comparison. */
export function gatewayJson(bytes: Uint8Array): string {
  return JSON.stringify(GatewayFrame.toObject(GatewayFrame.decode(bytes), { oneofs: true, bytes: String }));
}
export function connectorJson(bytes: Uint8Array): string {
  return JSON.stringify(ConnectorFrame.toObject(ConnectorFrame.decode(bytes), { oneofs: true, bytes: String }));
}
