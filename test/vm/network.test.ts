/**
 * Guest networking: loopback in every VM; with `network`, eth0 configured for
 * QEMU user networking (10.0.2.15/24 via 10.0.2.2), through which the guest
 * reaches public addresses (a test host this file makes on TEST-NET-2) and
 * never the host (its loopback through 10.0.2.2, its own addresses) nor
 * private or link-local ones, although this machine reaches them all.
 */
import { afterAll, describe, expect, it, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Fs from "node:fs"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { VmRunInput } from "../../src/contract/vm.js"
import { VmManager } from "../../src/services/VmManager.js"
import { kernelCommandLine, NETWORK_KERNEL_ARG } from "../../src/vm/qemu/args.js"
import {
  HOST_SIDE_ADDRESS,
  METADATA_ADDRESS,
  PRIVATE_TEST_ADDRESS,
  PUBLIC_TEST_ADDRESS,
  TEST_HOST_PORT,
  testHost
} from "../support/testHost.js"
import { eventually, makeStateDir, qemuProcessesUnder, repoRoot, testLayer, vmDirsUnder } from "../support/vm.js"

const stateDir = makeStateDir()
afterAll(() => Fs.rmSync(stateDir, { recursive: true, force: true }))

const input = (command: VmRunInput["command"], extra: Partial<VmRunInput> = {}) =>
  Schema.decodeUnknownSync(VmRunInput)({ environment: "tiny", command, mem_mib: 256, timeout_seconds: 60, ...extra })

const run = (command: string, extra: Partial<VmRunInput> = {}) =>
  Effect.gen(function*() {
    const { result } = yield* (yield* VmManager).run(input(command, extra))
    return result
  })

const noLeftovers = Effect.gen(function*() {
  expect(yield* eventually(() => qemuProcessesUnder(stateDir).length === 0)).toBe(true)
  expect(vmDirsUnder(stateDir)).toEqual([])
})

/** An HTTP server on the host (`address`) that answers every request with `body`; closed with the scope. */
const hostHttpServer = (body: string, address: string) =>
  Effect.gen(function*() {
    const requests: Array<string> = []
    const server = yield* Effect.acquireRelease(
      Effect.sync(() =>
        Http.createServer((req, res) => {
          requests.push(`${req.method} ${req.url}`)
          res.writeHead(200, { "content-type": "text/plain", "content-length": Buffer.byteLength(body) })
          res.end(body)
        })
      ),
      (server) =>
        Effect.async<void>((resume) => {
          server.closeAllConnections()
          server.close(() => resume(Effect.void))
        })
    )
    yield* Effect.async<void, Error>((resume) => {
      server.once("error", (e) => resume(Effect.fail(e)))
      server.listen(0, address, () => resume(Effect.void))
    })
    return { port: (server.address() as AddressInfo).port, requests }
  })

/** GET from this machine itself. */
const hostGet = (url: string) =>
  Effect.async<string, Error>((resume) => {
    Http.get(url, (res) => {
      let body = ""
      res.on("data", (b: Buffer) => (body += b.toString()))
      res.on("end", () => resume(Effect.succeed(body)))
    }).on("error", (e) => resume(Effect.fail(e)))
  })

describe("kernel command line", () => {
  it("tells the agent about the NIC only when the VM has one", () => {
    const header = Fs.readFileSync(Path.join(repoRoot, "guest", "agent", "agent.h"), "utf8")
    expect(header).toContain(`#define PYRO_CMDLINE_NETWORK "${NETWORK_KERNEL_ARG}"`)
    expect(kernelCommandLine({ tscKhz: undefined, network: true }).split(" ")).toContain("pyro.net=1")
    expect(kernelCommandLine({ tscKhz: undefined, network: false })).not.toContain("pyro.net")
    expect(kernelCommandLine({ tscKhz: undefined })).not.toContain("pyro.net")
  })
})

layer(testLayer(stateDir), { timeout: "300 seconds", excludeTestServices: true })("guest network", (it) => {
  it.effect("without network: lo is up with 127.0.0.1/8 and there is no other interface", () =>
    Effect.gen(function*() {
      const result = yield* run(
        "ls /sys/class/net; echo ---; ip addr show lo; echo ---; ip route; echo ---; ls -d /sys/module/virtio_net 2>&1"
      )
      expect(result.exit_code).not.toBe(0) // the last ls fails
      const [interfaces, lo, routes, virtioNet] = result.stdout.split("---\n")
      expect(interfaces).toBe("lo\n")
      expect(lo).toMatch(/^1: lo: <[^>]*\bUP\b[^>]*>/)
      expect(lo).toContain("inet 127.0.0.1/8 scope host lo")
      // No default route, no eth0.
      expect(routes).toBe("")
      // virtio_net is loaded only for VMs with a NIC.
      expect(virtioNet).toContain("No such file or directory")
      yield* noLeftovers
    }))

  it.effect("without network: a TCP server on 127.0.0.1 is reachable from inside the guest", () =>
    Effect.gen(function*() {
      // Server answers "pong" and records what it got; the client retries until it listens.
      const result = yield* run([
        "echo pong | nc -l -p 8080 > /tmp/got &",
        "for i in $(seq 200); do echo ping | nc 127.0.0.1 8080 2>/dev/null && break; usleep 50000; done",
        "wait",
        "echo server got: $(cat /tmp/got)"
      ].join("\n"))
      expect(result.exit_code).toBe(0)
      expect(result.stdout).toBe("pong\nserver got: ping\n")
      yield* noLeftovers
    }))

  it.effect("with network: eth0 is 10.0.2.15/24, the default route goes via 10.0.2.2, DNS is 10.0.2.3", () =>
    Effect.gen(function*() {
      const result = yield* run(
        "ls /sys/class/net; echo ---; ip addr show eth0; echo ---; ip route; echo ---; cat /etc/resolv.conf; echo ---; ls -d /sys/module/virtio_net",
        { network: true }
      )
      expect(result.exit_code).toBe(0)
      const [interfaces, eth0, routes, resolv, virtioNet] = result.stdout.split("---\n")
      expect(interfaces).toBe("eth0\nlo\n")
      expect(eth0).toMatch(/^2: eth0: <[^>]*\bUP\b[^>]*>/)
      expect(eth0).toContain("inet 10.0.2.15/24 ")
      expect(routes).toContain("default via 10.0.2.2 dev eth0")
      expect(routes).toContain("10.0.2.0/24 dev eth0")
      // The tiny environment ships no resolv.conf; the agent writes this one at attach.
      expect(resolv).toBe("nameserver 10.0.2.3\n")
      expect(virtioNet).toBe("/sys/module/virtio_net\n")
      yield* noLeftovers
    }))

  it.scoped("with network: the guest reaches a public test host, and never the host or a private or link-local address", () =>
    Effect.gen(function*() {
      const host = yield* testHost
      const loopback = yield* hostHttpServer("host loopback\n", "127.0.0.1")
      const anyAddress = yield* hostHttpServer("host, any address\n", "0.0.0.0")
      // This machine itself reaches every one of them: what stops the guest is pyro.
      for (const address of [PUBLIC_TEST_ADDRESS, PRIVATE_TEST_ADDRESS, METADATA_ADDRESS]) {
        expect(yield* hostGet(`http://${address}:${TEST_HOST_PORT}/from-host`)).toBe(host.body(address))
      }
      const hostEth = Object.values(Os.networkInterfaces()).flatMap((l) => l ?? [])
        .find((i) => i.family === "IPv4" && !i.internal && i.address !== HOST_SIDE_ADDRESS)?.address
      const refused = [
        `10.0.2.2:${loopback.port}`, // slirp's alias for the host's loopback
        `10.0.2.2:${anyAddress.port}`,
        `${HOST_SIDE_ADDRESS}:${anyAddress.port}`, // the host's own addresses
        ...(hostEth ? [`${hostEth}:${anyAddress.port}`] : []),
        `${PRIVATE_TEST_ADDRESS}:${TEST_HOST_PORT}`,
        `${METADATA_ADDRESS}:${TEST_HOST_PORT}`,
        `internal.test:${TEST_HOST_PORT}` // a name that resolves to a private address
      ]
      const script = [
        `echo "${PRIVATE_TEST_ADDRESS} internal.test" >> /etc/hosts`,
        `timeout 10 wget -q -O - http://${PUBLIC_TEST_ADDRESS}:${TEST_HOST_PORT}/public || echo "public failed $?"`,
        ...refused.map((target) => `timeout 10 wget -q -O - http://${target}/x >/dev/null 2>&1 && echo "REACHED ${target}"`),
        "echo done"
      ].join("\n")
      const result = yield* run(script, { network: true })
      expect(result.stdout).toBe(`${host.body(PUBLIC_TEST_ADDRESS)}done\n`)
      expect(host.requests.filter((r) => !r.endsWith("/from-host"))).toEqual([`${PUBLIC_TEST_ADDRESS} GET /public`])
      expect(loopback.requests).toEqual([])
      expect(anyAddress.requests).toEqual([])
      yield* noLeftovers
    }), 120_000)
})
