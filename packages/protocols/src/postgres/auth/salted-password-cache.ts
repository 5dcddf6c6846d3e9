import { saltedPassword } from "./scram.js";

/**
 * SCRAM's SaltedPassword (PBKDF2, 4096 iterations by default: ≈ 1 ms of CPU on the event loop)
 * for a password, salt and iteration count seen before. A server keeps one salt per role, so a
 * connector logging in with the same credential again derives the same value every time; the
 * cache makes every login after the first cost a few HMACs. Bounded (oldest dropped first); it
 * holds what the process holds anyway (the password lets anyone derive it).
 */
export class SaltedPasswordCache {
  private readonly entries = new Map<string, Uint8Array>();

  constructor(private readonly maxEntries = 64) {}

  get(password: string, salt: Uint8Array, iterations: number): Uint8Array {
    const key = `${iterations}\0${Buffer.from(salt).toString("base64")}\0${password}`;
    const known = this.entries.get(key);
    if (known) return known;
    const salted = saltedPassword(password, salt, iterations);
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, salted);
    return salted;
  }
}

/** The process's cache, shared by every SCRAM client (the connector's logins). */
export const saltedPasswords = new SaltedPasswordCache();
