/**
 * Guest networking: loopback in every VM; with `network`, eth0 configured for
 * QEMU user networking (10.0.2.15/24 via 10.0.2.2), through which the guest
 * reaches a server on the host's loopback.
 */
import { afterAll, describe, expect, it, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Fs from "node:fs"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import * as Path from "node:path"
import { VmRunInput } from "../../src/contract/vm.js"
import { VmManager } from "../../src/services/VmManager.js"
import { kernelCommandLine, NETWORK_KERNEL_ARG } from "../../src/vm/qemu/args.js"
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

/** An HTTP server on the host's 127.0.0.1 that answers every request with `body`; closed with the scope. */
const hostHttpServer = (body: string) =>
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
      server.listen(0, "127.0.0.1", () => resume(Effect.void))
    })
    return { port: (server.address() as AddressInfo).port, requests }
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

  it.scoped("with network: the guest fetches a page from a server on the host's loopback via 10.0.2.2", () =>
    Effect.gen(function*() {
      const body = `pyro network test ${Math.random().toString(36).slice(2)}\nsecond line\n`
      const server = yield* hostHttpServer(body)
      const result = yield* run(`wget -q -O - http://10.0.2.2:${server.port}/hello`, { network: true })
      expect(result.stderr).toBe("")
      expect(result.exit_code).toBe(0)
      expect(result.stdout).toBe(body)
      expect(server.requests).toEqual(["GET /hello"])
      yield* noLeftovers
    }))
})
