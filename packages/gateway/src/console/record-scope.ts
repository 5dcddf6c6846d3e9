import type { Store } from "@gatehouse/store";
import { ApiError } from "../api/json.js";
import type { Viewer } from "./sign-ins.js";

// What a console viewer may read of /api/v1, checked on the server before any route answers:
//   the admin token (bearer or console cookie)  everything, as before
//   an auditor (console.auditors)               every read (GET), but not the keys
//   anyone else signed in                        their own sessions only: lists and searches are
//                                                narrowed to their identity, and another identity's
//                                                session, events, streams, exports, verification and
//                                                live tail answer 404 as if it did not exist
// Connectors and connections (no record data) are readable by every signed-in viewer.

const SESSION_PATH = /^\/api\/v1\/sessions\/([^/]+)(\/.*)?$/;

export async function scopeRequest(viewer: Viewer, method: string, url: URL, store: Pick<Store, "sessions">): Promise<void> {
  if (viewer.method === "admin_token") return;
  if (method !== "GET" && method !== "HEAD") throw new ApiError("forbidden", "the console reads the record; changes need the admin token");
  const path = url.pathname;
  if (path === "/api/v1/connectors") return;
  if (path === "/api/v1/keys" || path.startsWith("/api/v1/keys/")) throw new ApiError("forbidden", "keys are the admin's");
  if (viewer.auditor) return;
  if (path === "/api/v1/sessions" || path === "/api/v1/events") {
    const asked = url.searchParams.get("identity");
    if (asked && asked !== viewer.name) throw new ApiError("forbidden", `you may read only your own sessions (identity ${viewer.name}), not ${asked}'s`);
    url.searchParams.set("identity", viewer.name);
    return;
  }
  const match = SESSION_PATH.exec(path);
  if (match) {
    const id = decodeURIComponent(match[1]!);
    const found = await store.sessions.get(id).catch((cause: unknown) => {
      throw new ApiError("store_unavailable", `the store could not answer: ${(cause as Error).message}`);
    });
    // The same answer as a session that does not exist: no telling whose ids are real.
    if (!found || found.session.identity.name !== viewer.name) throw new ApiError("not_found", `no session ${id}`);
    return;
  }
  throw new ApiError("forbidden", `${path} is not open to a viewer who is not an auditor`);
}
