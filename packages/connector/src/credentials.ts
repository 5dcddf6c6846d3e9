import { readFile } from "node:fs/promises";
import { ConnectorError } from "./errors.js";

/**
 * Resolves the credential reference an OpenStream carries (`Credential.password_ref`). The gateway only ever
 * knows the reference; the secret lives here.
 *
 *   ""          no password (the dialer connects without one)
 *   env:NAME    the value of environment variable NAME in the connector's environment
 *   file:PATH   the file's contents, trailing newlines trimmed (so `echo secret > f` works)
 *
 * A reference is resolved at every open, so a rotated file is picked up without a restart. An unset or empty
 * variable, an unreadable or empty file, or any other form is a CREDENTIAL_UNAVAILABLE ConnectorError whose
 * message names the reference and never the secret.
 */
export async function resolveCredential(
  ref: string,
  env: Readonly<Record<string, string | undefined>>,
): Promise<string | null> {
  if (ref === "") return null;
  const unavailable = (why: string, cause?: unknown): never => {
    throw new ConnectorError("CREDENTIAL_UNAVAILABLE", `credential "${ref}": ${why}`, { cause });
  };

  if (ref.startsWith("env:")) {
    const name = ref.slice("env:".length);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) return unavailable("not a valid environment variable name");
    const value = env[name];
    if (value === undefined) return unavailable("the environment variable is not set on the connector");
    if (value === "") return unavailable("the environment variable is empty on the connector");
    return value;
  }

  if (ref.startsWith("file:")) {
    const path = ref.slice("file:".length);
    if (path === "") return unavailable("no file path given");
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (err) {
      // The OS code (ENOENT, EACCES, EISDIR) says what to fix; the file content is never part of the message.
      const code = (err as NodeJS.ErrnoException).code ?? "read error";
      return unavailable(`cannot read the file on the connector (${code})`, err);
    }
    const value = text.replace(/(?:\r?\n)+$/, "");
    if (value === "") return unavailable("the file is empty");
    return value;
  }

  return unavailable("unsupported reference; use env:NAME or file:PATH");
}
