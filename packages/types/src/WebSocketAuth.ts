/**
 * The bearer token on a WebSocket, which browsers cannot give headers: offered as a subprotocol
 * (`Sec-WebSocket-Protocol: osqueue, osqueue.bearer.<base64url of the token>`), so it stays out
 * of the URL that proxies and access logs record. The broker answers with the plain `osqueue`
 * protocol, never the one carrying the token. (packages/broker/README.md, "Auth".)
 */

/** The protocol the broker selects: offered first, so a server picking the first offer picks it. */
export const protocol = "osqueue"

const bearerPrefix = "osqueue.bearer."

const toBase64Url = (text: string): string => {
  let binary = ""
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte)
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "")
}

const fromBase64Url = (encoded: string): string | undefined => {
  try {
    const binary = atob(encoded.replace(/-/g, "+").replace(/_/g, "/"))
    return new TextDecoder("utf-8", { fatal: true }).decode(Uint8Array.from(binary, (c) => c.charCodeAt(0)))
  } catch {
    return undefined
  }
}

/** The subprotocols a client offers: `osqueue`, then the token (base64url keeps it within a protocol name's characters). */
export const protocols = (token: string | undefined): Array<string> =>
  token === undefined ? [protocol] : [protocol, `${bearerPrefix}${toBase64Url(token)}`]

/**
 * The token offered in a `Sec-WebSocket-Protocol` header, or `undefined` when none is (or it is
 * not base64url of UTF-8 text: the request then has no token, and is refused as such).
 */
export const tokenOf = (header: string | undefined): string | undefined => {
  if (header === undefined) return undefined
  for (const offered of header.split(",")) {
    const name = offered.trim()
    if (name.startsWith(bearerPrefix)) return fromBase64Url(name.slice(bearerPrefix.length))
  }
  return undefined
}
