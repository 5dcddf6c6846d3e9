// The generated protobufjs classes for tunnel.proto (namespace gatehouse.tunnel.v1), under plain names.
// Each name is both the class (value) and its instance type; the I* interfaces describe plain objects.
import { gatehouse } from "./gen/tunnel.js";

import v1 = gatehouse.tunnel.v1;

export const Target = v1.Target;
export type Target = v1.Target;
export type ITarget = v1.ITarget;
export const Credential = v1.Credential;
export type Credential = v1.Credential;
export type ICredential = v1.ICredential;
export const OpenStream = v1.OpenStream;
export type OpenStream = v1.OpenStream;
export type IOpenStream = v1.IOpenStream;
export const StreamOpened = v1.StreamOpened;
export type StreamOpened = v1.StreamOpened;
export type IStreamOpened = v1.IStreamOpened;
export const StreamFailed = v1.StreamFailed;
export type StreamFailed = v1.StreamFailed;
export type IStreamFailed = v1.IStreamFailed;
export namespace StreamFailed {
  export type Code = v1.StreamFailed.Code;
}
export const Data = v1.Data;
export type Data = v1.Data;
export type IData = v1.IData;
export const WindowUpdate = v1.WindowUpdate;
export type WindowUpdate = v1.WindowUpdate;
export type IWindowUpdate = v1.IWindowUpdate;
export const Close = v1.Close;
export type Close = v1.Close;
export type IClose = v1.IClose;
export namespace Close {
  export type Kind = v1.Close.Kind;
}
export const Ping = v1.Ping;
export type Ping = v1.Ping;
export type IPing = v1.IPing;
export const Pong = v1.Pong;
export type Pong = v1.Pong;
export type IPong = v1.IPong;
export const Drain = v1.Drain;
export type Drain = v1.Drain;
export type IDrain = v1.IDrain;
export const GatewayFrame = v1.GatewayFrame;
export type GatewayFrame = v1.GatewayFrame;
export type IGatewayFrame = v1.IGatewayFrame;
export const ConnectorFrame = v1.ConnectorFrame;
export type ConnectorFrame = v1.ConnectorFrame;
export type IConnectorFrame = v1.IConnectorFrame;
