/**
 * The broker's tokens, each with a role, and the refusal of what a role may not run (the table is
 * `Roles` in @osqueue/types).
 * `OSQUEUE_TOKEN` is an admin token; `OSQUEUE_TOKENS` and `OSQUEUE_TOKENS_FILE` add tokens with
 * roles (packages/broker/README.md, "Tokens and roles"). Every transport asks the same `Access`:
 * the gate for the token (401), and each operation where it is handled for the role (403), so
 * REST, RPC over HTTP and RPC over WebSocket decide alike.
 */
import { Forbidden, type Role, Roles, Unauthorized } from "@osqueue/types"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { createHash } from "node:crypto"
import type { BrokerSettings } from "./BrokerConfig.js"

export interface RoleToken {
  readonly role: Role
  readonly token: Redacted.Redacted
}

/**
 * Tokens from `OSQUEUE_TOKENS` (`role:token,role:token`) or a line of `OSQUEUE_TOKENS_FILE`
 * (`role token`; blank lines and `#` comments skipped); the problem, naming where, when one is
 * not that.
 */
export const parseTokens = (
  text: string,
  format: "list" | "file",
  source: string
): ReadonlyArray<RoleToken> | string => {
  const entries = format === "list" ? text.split(",") : text.split(/\r?\n/)
  const tokens: Array<RoleToken> = []
  for (const [index, raw] of entries.entries()) {
    const entry = raw.trim()
    if (entry === "" || (format === "file" && entry.startsWith("#"))) continue
    const where = format === "list" ? `${source} entry ${index + 1}` : `${source} line ${index + 1}`
    const match = format === "list" ? /^([a-z]+):(\S+)$/.exec(entry) : /^([a-z]+)\s+(\S+)$/.exec(entry)
    // The entry is not repeated: it holds a token.
    if (match === null) {
      return `${where} is not ${
        format === "list" ? "role:token" : "\"role token\""
      } (a role, then a token without spaces)`
    }
    const [, role = "", token = ""] = match
    if (!Roles.isRole(role)) {
      return `${where} names the role ${JSON.stringify(role.slice(0, 20))}: roles are ${Roles.roles.join(", ")}`
    }
    tokens.push({ role, token: Redacted.make(token) })
  }
  return tokens
}

const digest = (token: string): Buffer => createHash("sha256").update(token).digest()

/** The problem when one token is given two roles, or `undefined`. */
export const conflict = (tokens: ReadonlyArray<RoleToken>): string | undefined => {
  const seen = new Map<string, Role>()
  for (const { role, token } of tokens) {
    const key = digest(Redacted.value(token)).toString("hex")
    const before = seen.get(key)
    if (before !== undefined && before !== role) {
      return `one token is given two roles (${before} and ${role}): give each token one role`
    }
    seen.set(key, role)
  }
  return undefined
}

/** `Forbidden` naming the role, the operation and the roles that may run it; `undefined` when `role` may run it (without a role, nothing is allowed). */
export const permit = (role: Role | undefined, operation: Roles.Operation): Forbidden | undefined => {
  if (role !== undefined && Roles.may(role, operation)) return undefined
  const needs = Roles.rolesFor(operation)
  const who = role === undefined ? "a request without a role" : `a ${role} token`
  return new Forbidden({
    reason: `${who} may not run ${operation}: it needs a token with the role ${needs.join(" or ")}`,
    ...(role === undefined ? {} : { role }),
    operation,
    needs
  })
}

/** The token of an `Authorization: Bearer <token>` header. */
export const bearer = (authorization: string | undefined): string | undefined =>
  authorization === undefined ? undefined : /^Bearer\s+(.+)$/i.exec(authorization.trim())?.[1]

/**
 * The role of the token in `authorization` (`Bearer <token>`), or of `socketToken` (a WebSocket
 * upgrade's, `WebSocketAuth`) when there is no such header; `Unauthorized` when there is none or it is unknown. `admin` for all when no
 * token is set.
 */
export type Authenticate = (authorization: string | undefined, socketToken?: string) => Role | Unauthorized

export const authenticator = (tokens: ReadonlyArray<RoleToken>): Authenticate => {
  if (tokens.length === 0) return () => "admin"
  // Keyed by the SHA-256 of each token: the lookup hashes what was presented first, so its time
  // depends on the digest, which tells nothing of how close a guess was.
  const known = new Map(tokens.map(({ role, token }) => [digest(Redacted.value(token)).toString("hex"), role]))
  return (authorization, socketToken) => {
    const token = authorization === undefined ? socketToken : bearer(authorization)
    if (token === undefined) return new Unauthorized({ reason: "no bearer token was sent" })
    return known.get(digest(token).toString("hex")) ?? new Unauthorized({ reason: "the bearer token is wrong" })
  }
}

/** The tokens of the settings: `OSQUEUE_TOKEN` as admin, then those given roles. */
export const tokensOf = (settings: Pick<BrokerSettings, "token" | "tokens">): ReadonlyArray<RoleToken> => [
  ...Option.toArray(Option.map(settings.token, (token) => ({ role: "admin" as const, token }))),
  ...settings.tokens
]
