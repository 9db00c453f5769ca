/**
 * Test hosts the network tests make for themselves: a network namespace joined
 * to this machine by a veth pair, running an HTTP server on port 8080 of every
 * address it has. One address is public-looking (TEST-NET-2, 198.51.100.2,
 * which the guest must reach); others are private (10.250.0.2) and
 * link-local (169.254.169.254, where clouds keep their metadata service), which
 * the guest must not reach although this machine can. Needs root (`ip netns`).
 *
 * `makeTestHost` makes others on other documentation subnets, without the
 * private addresses (two hosts cannot both route them), and optionally with
 * a DNS server (A records only) on port 53 of the host's address.
 */
import * as Effect from "effect/Effect"
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { randomBytes } from "node:crypto"

export const PUBLIC_TEST_ADDRESS = "198.51.100.2"
/** This machine's end of the veth: one of the host's own addresses. */
export const HOST_SIDE_ADDRESS = "198.51.100.1"
export const PRIVATE_TEST_ADDRESS = "10.250.0.2"
export const METADATA_ADDRESS = "169.254.169.254"
export const TEST_HOST_PORT = 8080

export interface TestHost {
  /** Its public-looking address (PUBLIC_TEST_ADDRESS for `testHost`). */
  readonly address: string
  /** This machine's end of its veth: one of this machine's own addresses. */
  readonly hostSide: string
  /** Every request the server answered: "<local address> <method> <path>". */
  readonly requests: ReadonlyArray<string>
  /** The body it answers with, for `address`. */
  readonly body: (address: string) => string
}

const ip = (...args: Array<string>) => execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] })

/** Answers "test host at <address>", or /bytes/N: N bytes (for bench/network). */
const SERVER = `
const http = require("node:http")
const block = Buffer.alloc(1 << 20, 120)
http.createServer((req, res) => {
  const local = req.socket.localAddress.replace(/^::ffff:/, "")
  process.stdout.write(local + " " + req.method + " " + req.url + "\\n")
  const bytes = /^\\/bytes\\/(\\d+)$/.exec(req.url)
  if (!bytes) return res.end("test host at " + local + "\\n")
  let left = Number(bytes[1])
  res.writeHead(200, { "content-length": left })
  const more = () => {
    while (left > 0) {
      const n = Math.min(left, block.length)
      left -= n
      if (!res.write(n === block.length ? block : block.subarray(0, n))) return res.once("drain", more)
    }
    res.end()
  }
  more()
}).listen(${TEST_HOST_PORT}, "0.0.0.0", () => process.stdout.write("listening\\n"))
`

/** Answers A queries for the names in RECORDS (NXDOMAIN for others, no answer for other types). */
const DNS_SERVER = `
const dgram = require("node:dgram")
const records = JSON.parse(process.env.RECORDS)
const socket = dgram.createSocket("udp4")
socket.on("message", (q, from) => {
  if (q.length < 17) return
  let at = 12
  const labels = []
  while (at < q.length && q[at] !== 0) {
    labels.push(q.subarray(at + 1, at + 1 + q[at]).toString("latin1"))
    at += 1 + q[at]
  }
  const question = q.subarray(12, at + 5)
  const type = q.readUInt16BE(at + 1)
  const address = records[labels.join(".").toLowerCase()]
  const answers = address && type === 1 ? 1 : 0
  const header = Buffer.alloc(12)
  q.copy(header, 0, 0, 2)
  header.writeUInt16BE(address ? 0x8180 : 0x8183, 2)
  header.writeUInt16BE(1, 4)
  header.writeUInt16BE(answers, 6)
  const answer = answers
    ? Buffer.concat([Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4]), Buffer.from(address.split(".").map(Number))])
    : Buffer.alloc(0)
  socket.send(Buffer.concat([header, question, answer]), from.port, from.address)
})
socket.bind(53, "0.0.0.0", () => process.stdout.write("listening\\n"))
`

/** Run `code` with node in `ns`, once it prints "listening"; every other line it prints goes to `onLine`. */
const serveIn = (ns: string, code: string, env: Record<string, string>, onLine: (line: string) => void) =>
  Effect.async<ChildProcess>((resume) => {
    const child: ChildProcess = spawn("ip", ["netns", "exec", ns, process.execPath, "-e", code], {
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, ...env }
    })
    let buffered = ""
    child.stdout!.on("data", (b: Buffer) => {
      buffered += b.toString()
      const lines = buffered.split("\n")
      buffered = lines.pop()!
      for (const line of lines) {
        if (line === "listening") resume(Effect.succeed(child))
        else onLine(line)
      }
    })
  })

export interface TestHostOptions {
  /** The first three octets of its /24: the host is .2, this machine's end .1. Default TEST-NET-2. */
  readonly subnet?: string
  /** Also the private and link-local addresses (only one such host at a time). Default: with the default subnet. */
  readonly privateAddresses?: boolean
  /** A DNS server on port 53 of the host's address answering these names (lowercase) with these IPv4 addresses. */
  readonly dns?: Readonly<Record<string, string>>
}

/** A test host for the scope: namespace, veth, addresses, routes and servers all removed at its end. */
export const makeTestHost = (options: TestHostOptions = {}) =>
  Effect.acquireRelease(
    Effect.gen(function*() {
      const subnet = options.subnet ?? "198.51.100"
      const withPrivate = options.privateAddresses ?? options.subnet === undefined
      const address = `${subnet}.2`
      const hostSide = `${subnet}.1`
      const tag = randomBytes(3).toString("hex")
      const ns = `pyro-th-${tag}`
      const hostEnd = `pyroh${tag}`
      const nsEnd = `pyron${tag}`
      ip("netns", "add", ns)
      ip("link", "add", hostEnd, "type", "veth", "peer", "name", nsEnd)
      ip("link", "set", nsEnd, "netns", ns)
      ip("addr", "add", `${hostSide}/24`, "dev", hostEnd)
      ip("link", "set", hostEnd, "up")
      for (const a of [`${address}/24`, ...(withPrivate ? [`${PRIVATE_TEST_ADDRESS}/32`, `${METADATA_ADDRESS}/32`] : [])]) {
        ip("netns", "exec", ns, "ip", "addr", "add", a, "dev", nsEnd)
      }
      ip("netns", "exec", ns, "ip", "link", "set", nsEnd, "up")
      ip("netns", "exec", ns, "ip", "link", "set", "lo", "up")
      ip("netns", "exec", ns, "ip", "route", "add", "default", "via", hostSide)
      if (withPrivate) {
        // This machine reaches the private addresses too: what stops the guest is pyro, not routing.
        ip("route", "add", `${PRIVATE_TEST_ADDRESS}/32`, "dev", hostEnd)
        ip("route", "add", `${METADATA_ADDRESS}/32`, "dev", hostEnd)
      }
      const requests: Array<string> = []
      const servers = [yield* serveIn(ns, SERVER, {}, (line) => requests.push(line))]
      if (options.dns) servers.push(yield* serveIn(ns, DNS_SERVER, { RECORDS: JSON.stringify(options.dns) }, () => {}))
      const host: TestHost = { address, hostSide, requests, body: (a: string) => `test host at ${a}\n` }
      return { ns, hostEnd, servers, host }
    }),
    ({ hostEnd, ns, servers }) =>
      Effect.sync(() => {
        for (const server of servers) server.kill("SIGKILL")
        for (const args of [["link", "del", hostEnd], ["netns", "del", ns]]) {
          try {
            ip(...args)
          } catch {
            // already gone
          }
        }
      })
  ).pipe(Effect.map(({ host }): TestHost => host))

/** The test host on TEST-NET-2, with the private and link-local addresses. */
export const testHost = makeTestHost()

