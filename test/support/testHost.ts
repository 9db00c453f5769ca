/**
 * Test hosts the network tests make for themselves: a network namespace joined
 * to this machine by a veth pair, running an HTTP server on port 8080 of every
 * address it has. One address is public-looking (TEST-NET-2, 198.51.100.2,
 * which the guest must reach); others are private (10.250.0.2) and
 * link-local (169.254.169.254, where clouds keep their metadata service), which
 * the guest must not reach although this machine can. Needs root (`ip netns`).
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

/** A test host for the scope: namespace, veth, addresses, routes and server all removed at its end. */
export const testHost = Effect.acquireRelease(
  Effect.gen(function*() {
    const tag = randomBytes(3).toString("hex")
    const ns = `pyro-th-${tag}`
    const hostEnd = `pyroh${tag}`
    const nsEnd = `pyron${tag}`
    ip("netns", "add", ns)
    ip("link", "add", hostEnd, "type", "veth", "peer", "name", nsEnd)
    ip("link", "set", nsEnd, "netns", ns)
    ip("addr", "add", `${HOST_SIDE_ADDRESS}/24`, "dev", hostEnd)
    ip("link", "set", hostEnd, "up")
    for (const address of [`${PUBLIC_TEST_ADDRESS}/24`, `${PRIVATE_TEST_ADDRESS}/32`, `${METADATA_ADDRESS}/32`]) {
      ip("netns", "exec", ns, "ip", "addr", "add", address, "dev", nsEnd)
    }
    ip("netns", "exec", ns, "ip", "link", "set", nsEnd, "up")
    ip("netns", "exec", ns, "ip", "link", "set", "lo", "up")
    ip("netns", "exec", ns, "ip", "route", "add", "default", "via", HOST_SIDE_ADDRESS)
    // This machine reaches the private addresses too: what stops the guest is pyro, not routing.
    ip("route", "add", `${PRIVATE_TEST_ADDRESS}/32`, "dev", hostEnd)
    ip("route", "add", `${METADATA_ADDRESS}/32`, "dev", hostEnd)
    const requests: Array<string> = []
    const server: ChildProcess = spawn("ip", ["netns", "exec", ns, process.execPath, "-e", SERVER], {
      stdio: ["ignore", "pipe", "inherit"]
    })
    yield* Effect.async<void>((resume) => {
      let buffered = ""
      server.stdout!.on("data", (b: Buffer) => {
        buffered += b.toString()
        const lines = buffered.split("\n")
        buffered = lines.pop()!
        for (const line of lines) {
          if (line === "listening") resume(Effect.void)
          else requests.push(line)
        }
      })
    })
    return { ns, hostEnd, server, host: { requests, body: (address: string) => `test host at ${address}\n` } }
  }),
  ({ hostEnd, ns, server }) =>
    Effect.sync(() => {
      server.kill("SIGKILL")
      for (const args of [["link", "del", hostEnd], ["netns", "del", ns]]) {
        try {
          ip(...args)
        } catch {
          // already gone
        }
      }
    })
).pipe(Effect.map(({ host }): TestHost => host))

