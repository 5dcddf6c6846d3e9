// Which frame message each side writes and reads: the gateway writes GatewayFrame and reads
// ConnectorFrame; the connector the other way round. Both carry data, window_update, close, ping
// and pong (under different field numbers); the rest is one side's own.
import { type DataFrame, readDataFrame } from "./data-decoder.js";
import type { DataField } from "./message-builder.js";
import {
  ConnectorFrame,
  GatewayFrame,
  type IClose,
  type IConnectorFrame,
  type IGatewayFrame,
  type IPing,
  type IPong,
  type IWindowUpdate,
} from "./messages.js";

/** Frames both sides send (Data goes through MessageBuilder.addData instead). */
export type CommonFrame =
  | { windowUpdate: IWindowUpdate }
  | { close: IClose }
  | { ping: IPing }
  | { pong: IPong };

/** A decoded frame: Data read by hand (data-decoder.ts), everything else by protobufjs. */
export type IncomingFrame =
  | { frame: "data"; data: DataFrame }
  | ReturnType<typeof GatewayFrame.decode>
  | ReturnType<typeof ConnectorFrame.decode>;

export interface RoleCodec {
  readonly dataField: DataField;
  encode(frame: CommonFrame): Uint8Array;
  decode(bytes: Uint8Array): IncomingFrame;
}

export const gatewayCodec: RoleCodec = {
  dataField: 2,
  encode: (frame) => GatewayFrame.encode(frame).finish(),
  decode: (bytes) => decodeData(bytes, 3) ?? ConnectorFrame.decode(bytes),
};

export const connectorCodec: RoleCodec = {
  dataField: 3,
  encode: (frame) => ConnectorFrame.encode(frame).finish(),
  decode: (bytes) => decodeData(bytes, 2) ?? GatewayFrame.decode(bytes),
};

function decodeData(bytes: Uint8Array, field: DataField): IncomingFrame | undefined {
  const data = readDataFrame(bytes, field);
  return data && { frame: "data", data };
}

export function encodeGatewayFrame(frame: IGatewayFrame): Uint8Array {
  return GatewayFrame.encode(frame).finish();
}

export function encodeConnectorFrame(frame: IConnectorFrame): Uint8Array {
  return ConnectorFrame.encode(frame).finish();
}
