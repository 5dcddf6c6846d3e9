// Authentication (bearer tokens), impersonation and a small RBAC table: enough for the test
// to show that a cluster decides with the impersonated identity, as a real one does.

export interface TokenUser {
  user: string;
  groups?: string[];
  /** May send Impersonate-User / Impersonate-Group (the connector's service account). */
  canImpersonate?: boolean;
}

/** One allow rule; "*" matches anything. A subject is a user name or `group:NAME`. */
export interface RbacRule {
  subjects: string[];
  verbs: string[];
  /** Resource names as RBAC writes them: "pods", "pods/log", "pods/exec", "deployments". */
  resources: string[];
  /** Omitted: every namespace and the cluster scope. */
  namespaces?: string[];
}

export interface EffectiveUser {
  user: string;
  groups: string[];
  impersonatedBy?: string;
}

export type AuthResult =
  | { ok: true; who: EffectiveUser }
  | { ok: false; status: 401 }
  | { ok: false; status: 403; user: string; impersonated: { resource: "users" | "groups"; name: string } };

export function authenticate(headers: Record<string, string | string[] | undefined>, tokens: Record<string, TokenUser>): AuthResult {
  const auth = headers.authorization;
  const match = typeof auth === "string" ? /^Bearer\s+(\S+)$/i.exec(auth) : null;
  const caller = match ? tokens[match[1]!] : undefined;
  if (!caller) return { ok: false, status: 401 };
  const impUser = headers["impersonate-user"];
  const impGroups = headers["impersonate-group"];
  const groupList = impGroups === undefined ? [] : Array.isArray(impGroups) ? impGroups : impGroups.split(",").map((g) => g.trim());
  if (impUser === undefined) {
    if (groupList.length > 0) return { ok: false, status: 403, user: caller.user, impersonated: { resource: "groups", name: groupList[0]! } };
    return { ok: true, who: { user: caller.user, groups: ["system:authenticated", ...(caller.groups ?? [])] } };
  }
  const name = Array.isArray(impUser) ? impUser[0]! : impUser;
  if (!caller.canImpersonate) return { ok: false, status: 403, user: caller.user, impersonated: { resource: "users", name } };
  return { ok: true, who: { user: name, groups: ["system:authenticated", ...groupList], impersonatedBy: caller.user } };
}

const matches = (list: string[], value: string): boolean => list.includes("*") || list.includes(value);

export function allowed(rules: readonly RbacRule[], who: EffectiveUser, verb: string, resource: string, namespace: string | undefined): boolean {
  const subjects = [who.user, ...who.groups.map((g) => `group:${g}`)];
  return rules.some(
    (r) =>
      r.subjects.some((s) => s === "*" || subjects.includes(s)) &&
      matches(r.verbs, verb) &&
      matches(r.resources, resource) &&
      (r.namespaces === undefined || (namespace !== undefined && matches(r.namespaces, namespace))),
  );
}
