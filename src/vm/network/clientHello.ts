/**
 * The server name (SNI) in a TLS ClientHello, from the first bytes a guest
 * sends through a CONNECT tunnel (allowProxy.ts). Pure and bounded: the bytes
 * are the guest's.
 */

/** A ClientHello may be longer than one TLS record; never more than this is read. */
export const MAX_CLIENT_HELLO_BYTES = 16 * 1024

export type ClientHelloSni =
  /** More bytes are needed (and may still come within MAX_CLIENT_HELLO_BYTES). */
  | { readonly _tag: "Incomplete" }
  /** Not a TLS handshake: nothing to check. */
  | { readonly _tag: "NotTls" }
  /** A TLS record that is not a well-formed ClientHello, or one too long. */
  | { readonly _tag: "Malformed"; readonly why: string }
  /** The host_name the client asks for, or null when it sends none. */
  | { readonly _tag: "Hello"; readonly sni: string | null }

const RECORD_HANDSHAKE = 0x16
const HANDSHAKE_CLIENT_HELLO = 0x01
const EXTENSION_SERVER_NAME = 0x0000
const NAME_TYPE_HOST = 0x00

const malformed = (why: string): ClientHelloSni => ({ _tag: "Malformed", why })

/** The handshake bytes carried by the leading handshake records of `bytes`, and whether a record was cut short. */
const handshakeBytes = (bytes: Uint8Array): { readonly payload: Uint8Array; readonly cut: boolean } | string => {
  const parts: Array<Uint8Array> = []
  let at = 0
  while (at < bytes.length) {
    if (bytes[at] !== RECORD_HANDSHAKE) return parts.length === 0 ? "not a handshake record" : "a handshake cut by another record"
    if (at + 5 > bytes.length) return { payload: concat(parts), cut: true }
    const length = (bytes[at + 3]! << 8) | bytes[at + 4]!
    if (at + 5 + length > bytes.length) {
      parts.push(bytes.subarray(at + 5))
      return { payload: concat(parts), cut: true }
    }
    parts.push(bytes.subarray(at + 5, at + 5 + length))
    at += 5 + length
  }
  return { payload: concat(parts), cut: false }
}

const concat = (parts: ReadonlyArray<Uint8Array>) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

/** Reads big-endian fields from a ClientHello body, failing (undefined) past its end. */
class Reader {
  at = 0
  constructor(readonly bytes: Uint8Array, readonly end: number) {}
  take(n: number): Uint8Array | undefined {
    if (this.at + n > this.end) return undefined
    const out = this.bytes.subarray(this.at, this.at + n)
    this.at += n
    return out
  }
  uint(n: 1 | 2 | 3): number | undefined {
    const b = this.take(n)
    return b && b.reduce((v, byte) => (v << 8) | byte, 0)
  }
  /** A field preceded by its length in `n` bytes. */
  vector(n: 1 | 2): Uint8Array | undefined {
    const length = this.uint(n)
    return length === undefined ? undefined : this.take(length)
  }
}

export const parseClientHelloSni = (bytes: Uint8Array): ClientHelloSni => {
  if (bytes.length === 0) return { _tag: "Incomplete" }
  if (bytes[0] !== RECORD_HANDSHAKE) return { _tag: "NotTls" }
  const tooLong = bytes.length > MAX_CLIENT_HELLO_BYTES
  const handshake = handshakeBytes(tooLong ? bytes.subarray(0, MAX_CLIENT_HELLO_BYTES) : bytes)
  if (typeof handshake === "string") return malformed(handshake)
  const { payload, cut } = handshake
  const waitOrFail = () => (tooLong ? malformed(`a ClientHello longer than ${MAX_CLIENT_HELLO_BYTES} bytes`) : { _tag: "Incomplete" } as const)
  if (payload.length < 4) return cut || payload.length < 4 ? waitOrFail() : malformed("no handshake header")
  if (payload[0] !== HANDSHAKE_CLIENT_HELLO) return malformed("the first handshake message is not a ClientHello")
  const length = (payload[1]! << 16) | (payload[2]! << 8) | payload[3]!
  if (length + 4 > MAX_CLIENT_HELLO_BYTES) return malformed(`a ClientHello longer than ${MAX_CLIENT_HELLO_BYTES} bytes`)
  if (payload.length < 4 + length) return waitOrFail()
  const r = new Reader(payload, 4 + length)
  r.at = 4
  if (!r.take(2 + 32) || !r.vector(1) || !r.vector(2) || !r.vector(1)) return malformed("a ClientHello cut short")
  if (r.at === r.end) return { _tag: "Hello", sni: null } // no extensions at all
  const extensions = r.vector(2)
  if (!extensions || r.at !== r.end) return malformed("bad extensions length")
  const ext = new Reader(extensions, extensions.length)
  let sni: string | null = null
  while (ext.at < ext.end) {
    const type = ext.uint(2)
    const body = ext.vector(2)
    if (type === undefined || body === undefined) return malformed("an extension cut short")
    if (type !== EXTENSION_SERVER_NAME) continue
    if (sni !== null) return malformed("two server_name extensions")
    const list = new Reader(body, body.length)
    const names = list.vector(2)
    if (!names || list.at !== list.end) return malformed("bad server_name list")
    const entries = new Reader(names, names.length)
    while (entries.at < entries.end) {
      const nameType = entries.uint(1)
      const name = entries.vector(2)
      if (nameType === undefined || name === undefined) return malformed("a server name cut short")
      if (nameType !== NAME_TYPE_HOST) continue
      if (sni !== null) return malformed("two host names")
      sni = String.fromCharCode(...name)
    }
    if (sni === null) return malformed("a server_name extension without a host name")
  }
  return { _tag: "Hello", sni }
}
