/**
 * The allowlist proxy: what a guest with allow_hosts reaches the network
 * through. libslirp runs one per guest connection to 10.0.2.100:3128
 * (`guestfwd=...-cmd:`, through allowProxy.sh, which bounds how many run at
 * once), inside the VM's network namespace N, so every connection it makes
 * still obeys N's rules (egress.ts) and resolves with N's resolver. Its stdin
 * is the guest's connection (and so are its stdout and stderr: it writes
 * nothing else).
 *
 * It speaks HTTP proxy, one request per connection:
 * - `CONNECT host:port`: the name must be allowed; the first bytes the guest
 *   sends through the tunnel, if a TLS ClientHello, must name the same host
 *   (SNI) or none;
 * - `GET http://host[:port]/path` (any method): the name must be allowed, and
 *   the Host header must name the same host; sent on as `GET /path` with
 *   `Connection: close`, so that no second request rides the connection.
 * IP literals are refused, as is a name that resolves only to non-public
 * addresses. A refusal answers `403` with the reason in words, and is
 * appended to DIR/refused (refusals.ts) for vm_network_info. Everything read
 * from the guest is bounded in size and time.
 *
 *   DIR/allow_hosts   the entries, one per line (written by egress.ts)
 *
 * Bundled on its own (dist/allowProxy.cjs, scripts/build.mjs): a process
 * starts for every connection, so it imports nothing but Node and a few pure
 * modules.
 */
import * as Dns from "node:dns"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Path from "node:path"
import { hostPatternProblem } from "../../contract/hostPattern.js"
import { isPublicAddress } from "../../host/addresses.js"
import { hostAllowed, normalizeHost } from "./allowHosts.js"
import { MAX_CLIENT_HELLO_BYTES, parseClientHelloSni } from "./clientHello.js"
import { REFUSED_COUNT, REFUSED_LOG, REFUSED_LOG_OLD, REFUSED_LOG_ROTATE_BYTES } from "./refusals.js"

export const MAX_REQUEST_HEAD_BYTES = 16 * 1024
const HEAD_TIMEOUT_MS = 15_000
const HELLO_TIMEOUT_MS = 10_000
const CONNECT_TIMEOUT_MS = 15_000
/** A tunnel or request with no bytes either way for this long is closed. */
const IDLE_TIMEOUT_MS = 10 * 60_000

/** What the guest is told when a request is not carried, and why. */
class Refusal {
  constructor(
    readonly status: 400 | 403 | 502,
    readonly host: string,
    readonly reason: string,
    /** Counted in vm_network_info: the policy said no (not a malformed request or a dead upstream). */
    readonly counted: boolean
  ) {}
}

/** A host as it may appear in a message: printable, bounded. */
const shown = (host: string) => {
  const clean = host.replace(/[^\x21-\x7e]/g, "?")
  return clean.length > 100 ? `${clean.slice(0, 100)}...` : clean
}

const refused = (host: string, why: string) => new Refusal(403, host, `pyro: ${shown(host)} ${why}`, true)
const badRequest = (why: string) => new Refusal(400, "", `pyro: ${why}`, false)

/** The name to connect to, once it is one this VM may reach by its allowlist. */
const checkName = (rawHost: string, allowHosts: ReadonlyArray<string>): string | Refusal => {
  const bare = rawHost.replace(/^\[(.*)\]$/, "$1")
  if (Net.isIP(bare) !== 0) return refused(bare, "is an IP address: this VM reaches only the names in its allow_hosts")
  const host = normalizeHost(rawHost)
  const problem = hostPatternProblem(host)
  if (problem !== undefined) return refused(rawHost, `is not a DNS name this VM may reach (${problem})`)
  if (!hostAllowed(host, allowHosts)) return refused(host, "is not in this VM's allow_hosts")
  return host
}

/** `host:port` of a CONNECT, or of an absolute URI's authority. */
const splitAuthority = (authority: string, defaultPort: number): { host: string; port: number } | undefined => {
  const match = /^(\[[^\]]*\]|[^:]*)(?::(\d{1,5}))?$/.exec(authority)
  if (!match || match[1] === "") return undefined
  const port = match[2] === undefined ? defaultPort : Number(match[2])
  return port >= 1 && port <= 65535 ? { host: match[1]!, port } : undefined
}

interface Head {
  readonly method: string
  readonly target: string
  readonly version: string
  readonly headers: ReadonlyArray<readonly [string, string]>
}

const parseHead = (text: string): Head | undefined => {
  const [requestLine, ...lines] = text.split("\r\n")
  const match = /^([A-Z]+) (\S+) (HTTP\/1\.[01])$/.exec(requestLine ?? "")
  if (!match) return undefined
  const headers: Array<readonly [string, string]> = []
  for (const line of lines) {
    const colon = line.indexOf(":")
    if (colon <= 0 || /\s/.test(line.slice(0, colon))) return undefined
    headers.push([line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()])
  }
  return { method: match[1]!, target: match[2]!, version: match[3]!, headers }
}

/** The request head as sent upstream: origin-form target, no proxy headers, one request only. */
const upstreamHead = (head: Head, path: string) => {
  const kept = head.headers.filter(([name]) => !name.startsWith("proxy-") && name !== "connection" && name !== "keep-alive")
  return [`${head.method} ${path} ${head.version}`, ...kept.map(([n, v]) => `${n}: ${v}`), "connection: close", "", ""].join("\r\n")
}

/** Where a request goes, or why it does not. */
type Plan =
  | { readonly kind: "connect"; readonly host: string; readonly port: number }
  | { readonly kind: "forward"; readonly host: string; readonly port: number; readonly head: string }

const planFor = (head: Head, allowHosts: ReadonlyArray<string>): Plan | Refusal => {
  if (head.method === "CONNECT") {
    const authority = splitAuthority(head.target, -1)
    if (!authority || authority.port === -1) return badRequest("CONNECT needs host:port")
    const host = checkName(authority.host, allowHosts)
    return typeof host === "string" ? { kind: "connect", host, port: authority.port } : host
  }
  if (!head.target.startsWith("http://")) {
    return badRequest("this is an HTTP proxy: send an absolute http:// URI, or CONNECT for anything else (https)")
  }
  let url: URL
  try {
    url = new URL(head.target)
  } catch {
    return badRequest("the request's URI cannot be parsed")
  }
  const authority = splitAuthority(head.target.slice("http://".length).split(/[/?#]/)[0]!.replace(/^.*@/, ""), 80)
  if (!authority) return badRequest("the request's URI has no usable host and port")
  const host = checkName(authority.host, allowHosts)
  if (typeof host !== "string") return host
  const hostHeaders = head.headers.filter(([name]) => name === "host")
  if (hostHeaders.length > 1) return refused(host, "has a request with more than one Host header")
  const named = hostHeaders[0] && splitAuthority(hostHeaders[0][1], 80)
  if (hostHeaders[0] && (!named || normalizeHost(named.host) !== host)) {
    return refused(hostHeaders[0][1], `in the Host header differs from the request's host ${host}`)
  }
  return { kind: "forward", host, port: authority.port, head: upstreamHead(head, `${url.pathname}${url.search}`) }
}

const resolve = (host: string) =>
  new Promise<string | Refusal>((done) => {
    Dns.lookup(host, { family: 4, all: true }, (error, addresses) => {
      if (error) return done(new Refusal(502, host, `pyro: ${shown(host)} could not be resolved (${error.code ?? error.message})`, false))
      const usable = addresses.map((a) => a.address).find((a) => isPublicAddress(a))
      done(usable ?? refused(host, "resolves only to addresses this VM may not reach (the host, private or link-local networks)"))
    })
  })

const connectUpstream = (host: string, address: string, port: number) =>
  new Promise<Net.Socket | Refusal>((done) => {
    const socket = Net.connect({ host: address, port })
    const fail = (why: string, counted: boolean) => {
      socket.destroy()
      done(new Refusal(counted ? 403 : 502, host, `pyro: ${shown(host)} (${address}:${port}) ${why}`, counted))
    }
    socket.setTimeout(CONNECT_TIMEOUT_MS, () => fail("did not answer in time", false))
    socket.once("error", (e: NodeJS.ErrnoException) =>
      // The namespace's rules refuse with "unreachable": the policy's no, not a dead host.
      e.code === "ENETUNREACH" || e.code === "EHOSTUNREACH" || e.code === "EACCES" || e.code === "EPERM"
        ? fail("is an address this VM may not reach", true)
        : fail(`could not be reached (${e.code ?? e.message})`, false))
    socket.once("connect", () => {
      socket.setTimeout(0)
      socket.removeAllListeners("error")
      done(socket)
    })
  })

/** Bytes from `socket` until `enough` says so, at most `limit`, within `timeoutMs`; what stayed unread is put back. */
const readUntil = (socket: Net.Socket, limit: number, timeoutMs: number, enough: (bytes: Buffer) => number | "more" | "stop") =>
  new Promise<{ bytes: Buffer; end: number } | "timeout" | "closed" | "too-long">((done) => {
    let bytes = Buffer.alloc(0)
    const finish = (result: Awaited<ReturnType<typeof readUntil>>) => {
      clearTimeout(timer)
      socket.off("data", onData)
      socket.off("end", onEnd)
      socket.pause()
      done(result)
    }
    const onData = (chunk: Buffer) => {
      bytes = Buffer.concat([bytes, chunk])
      const verdict = enough(bytes)
      if (typeof verdict === "number") return finish({ bytes, end: verdict })
      if (verdict === "stop") return finish({ bytes, end: bytes.length })
      if (bytes.length > limit) finish("too-long")
    }
    const onEnd = () => finish("closed")
    const timer = setTimeout(() => finish("timeout"), timeoutMs)
    socket.on("data", onData)
    socket.on("end", onEnd)
    socket.resume()
  })

const logRefusal = (dir: string, refusal: Refusal) => {
  try {
    const log = Path.join(dir, REFUSED_LOG)
    try {
      if (Fs.statSync(log).size > REFUSED_LOG_ROTATE_BYTES) Fs.renameSync(log, Path.join(dir, REFUSED_LOG_OLD))
    } catch {
      // no log yet
    }
    const line = JSON.stringify({ at: new Date().toISOString(), host: shown(refusal.host), reason: refusal.reason })
    Fs.appendFileSync(log, `${line}\n`, { mode: 0o600 })
    Fs.appendFileSync(Path.join(dir, REFUSED_COUNT), ".", { mode: 0o600 })
  } catch {
    // the refusal stands even if it cannot be counted
  }
}

const answer = (guest: Net.Socket, refusal: Refusal) => {
  const phrase = {
    400: "Bad Request",
    403: "Forbidden",
    502: "Bad Gateway"
  }[refusal.status]
  // The reason phrase carries the words too: many clients (busybox wget among them) print only the status line.
  const body = `${refusal.reason}\n`
  // Closed once written: a guest that never closes its end must not keep this process.
  guest.once("finish", () => guest.destroy())
  guest.end(
    `HTTP/1.1 ${refusal.status} ${refusal.reason.replace(/[^\x20-\x7e]/g, "?") || phrase}\r\n` +
      `content-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`
  )
}

/** Both ways until either side ends; closed after IDLE_TIMEOUT_MS of silence. */
const pipeBoth = (guest: Net.Socket, upstream: Net.Socket) => {
  for (const s of [guest, upstream]) {
    s.setTimeout(IDLE_TIMEOUT_MS, () => {
      guest.destroy()
      upstream.destroy()
    })
    s.on("error", () => {
      guest.destroy()
      upstream.destroy()
    })
  }
  guest.pipe(upstream)
  upstream.pipe(guest)
  guest.resume()
}

const readAllowHosts = (dir: string): ReadonlyArray<string> => {
  try {
    return Fs.readFileSync(Path.join(dir, "allow_hosts"), "utf8").split("\n").filter((l) => l.length > 0)
  } catch {
    return [] // no list: nothing is allowed
  }
}

/** Serve the one connection on `guest`; resolves when it is handed to the pipes or refused. */
export const serveConnection = async (guest: Net.Socket, dir: string): Promise<void> => {
  guest.on("error", () => guest.destroy())
  const headRead = await readUntil(guest, MAX_REQUEST_HEAD_BYTES, HEAD_TIMEOUT_MS, (bytes) => {
    const end = bytes.indexOf("\r\n\r\n")
    return end >= 0 && end + 4 <= MAX_REQUEST_HEAD_BYTES ? end + 4 : "more"
  })
  if (typeof headRead === "string") {
    if (headRead === "too-long") answer(guest, badRequest(`a request head longer than ${MAX_REQUEST_HEAD_BYTES} bytes`))
    else guest.destroy()
    return
  }
  const rest = headRead.bytes.subarray(headRead.end)
  const head = parseHead(headRead.bytes.subarray(0, headRead.end - 4).toString("latin1"))
  const plan = head ? planFor(head, readAllowHosts(dir)) : badRequest("not an HTTP/1 request")
  const refuse = (refusal: Refusal) => {
    if (refusal.counted) logRefusal(dir, refusal)
    answer(guest, refusal)
  }
  if (plan instanceof Refusal) return refuse(plan)
  const address = await resolve(plan.host)
  if (address instanceof Refusal) return refuse(address)
  const upstream = await connectUpstream(plan.host, address, plan.port)
  if (upstream instanceof Refusal) return refuse(upstream)

  if (plan.kind === "forward") {
    upstream.write(plan.head)
    if (rest.length > 0) upstream.write(rest)
    return pipeBoth(guest, upstream)
  }
  guest.write("HTTP/1.1 200 Connection established\r\n\r\n")
  // The server may speak first (SSH, SMTP): its bytes flow at once; the guest's wait for the hello check.
  upstream.on("data", (chunk: Buffer) => guest.write(chunk))
  let first = rest
  if (first.length === 0 || parseClientHelloSni(first)._tag === "Incomplete") {
    const hello = await readUntil(guest, MAX_CLIENT_HELLO_BYTES, HELLO_TIMEOUT_MS, (bytes) =>
      parseClientHelloSni(Buffer.concat([rest, bytes]))._tag === "Incomplete" ? "more" : "stop")
    if (hello === "closed" || hello === "timeout" || hello === "too-long") {
      if (hello === "too-long") logRefusal(dir, refused(plan.host, "was sent a TLS ClientHello too long to check"))
      upstream.destroy()
      guest.destroy()
      return
    }
    first = Buffer.concat([rest, hello.bytes])
  }
  const sni = parseClientHelloSni(first)
  const badSni = sni._tag === "Malformed"
    ? `was sent a TLS ClientHello that cannot be checked (${sni.why})`
    : sni._tag === "Hello" && sni.sni !== null && normalizeHost(sni.sni) !== plan.host
    ? `was CONNECTed to with a TLS server name (SNI) of ${shown(sni.sni)}`
    : undefined
  if (badSni) {
    // The tunnel is open already: the guest sees it close; vm_network_info says why.
    logRefusal(dir, refused(plan.host, badSni))
    upstream.destroy()
    guest.destroy()
    return
  }
  upstream.removeAllListeners("data")
  upstream.write(first)
  pipeBoth(guest, upstream)
}
