/**
 * allow_hosts against real VMs and real network namespaces: two test hosts
 * and a DNS server this file makes (test/support/testHost.ts), used as the
 * guests' resolver (PYRO_GUEST_DNS). A `tiny` guest reaches host 1 by an
 * allowed name through the host's proxy, and nothing else: not host 2 by
 * name or by address (through the proxy or directly), not by a Host header
 * naming another host, never a private, link-local or loopback address or
 * the host's own by an allowed name; vm_network_info counts the refusals.
 * The operator's cap holds through the SDK. Needs root.
 */
import { afterAll, describe, expect, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Fs from "node:fs"
import { VmCreateInput, VmRunInput } from "../../src/contract/vm.js"
import { Pyro, PyroError } from "../../src/sdk/Pyro.js"
import { VmManager } from "../../src/services/VmManager.js"
import { makeTestHost, METADATA_ADDRESS, PRIVATE_TEST_ADDRESS, TEST_HOST_PORT } from "../support/testHost.js"
import { eventually, makeStateDir, qemuProcessesUnder, testLayer, vmDirsUnder } from "../support/vm.js"

const HOST_1 = "203.0.113" // TEST-NET-3: allowed.test, and the DNS server
const HOST_2 = "192.0.2" // TEST-NET-1: denied.test
const DNS = `${HOST_1}.2`
const RECORDS = {
  "allowed.test": `${HOST_1}.2`,
  "denied.test": `${HOST_2}.2`,
  "private.internal.test": PRIVATE_TEST_ADDRESS,
  "metadata.internal.test": METADATA_ADDRESS,
  "loopback.internal.test": "127.0.0.1",
  "self.internal.test": `${HOST_1}.1` // this machine's own end of host 1's veth
}
const ALLOW = ["allowed.test", "*.internal.test"]

const stateDir = makeStateDir()
afterAll(() => Fs.rmSync(stateDir, { recursive: true, force: true }))

const hosts = Effect.all([makeTestHost({ subnet: HOST_1, dns: RECORDS }), makeTestHost({ subnet: HOST_2 })])

const noLeftovers = Effect.gen(function*() {
  expect(yield* eventually(() => qemuProcessesUnder(stateDir).length === 0)).toBe(true)
  expect(vmDirsUnder(stateDir)).toEqual([])
})

/** One line: what wget printed (the body, or its error) and its exit code. */
const wget = (url: string) => `out=$(timeout 20 wget -q -O - ${url} 2>&1); rc=$?; echo "$out rc=$rc"`
const PORT = TEST_HOST_PORT

layer(testLayer(stateDir, { guestDns: Option.some(DNS) }), { timeout: "300 seconds", excludeTestServices: true })(
  "allow_hosts",
  (it) => {
    it.scoped("the guest reaches allowed names through the proxy and nothing else; vm_network_info counts the refusals", () =>
      Effect.gen(function*() {
        const [host1, host2] = yield* hosts
        const vms = yield* VmManager
        const created = yield* vms.create(Schema.decodeUnknownSync(VmCreateInput)({
          environment: "tiny",
          mem_mib: 256,
          network_policy: "egress",
          allow_hosts: ALLOW
        }))
        expect(created).toMatchObject({ network_enabled: true, network_policy: "egress", allow_hosts: ALLOW })
        const script = [
          `echo "ok: $(${wget(`http://allowed.test:${PORT}/ok`)})"`,
          `echo "denied: $(${wget(`http://denied.test:${PORT}/x`)})"`,
          `echo "ip: $(${wget(`http://${host2.address}:${PORT}/x`)})"`,
          // Not through the proxy: no route at all, so it fails at once.
          `start=$(date +%s); echo "direct: $(http_proxy= ${wget(`http://${host2.address}:${PORT}/x`)}) $(( $(date +%s) - start ))s"`,
          `printf 'GET http://allowed.test:${PORT}/trick HTTP/1.1\\r\\nHost: denied.test\\r\\n\\r\\n' | timeout 20 nc 10.0.2.100 3128 | head -n 1 | sed 's/^/host header: /'`,
          ...["private", "metadata", "loopback", "self"].map((n) => `echo "${n}: $(${wget(`http://${n}.internal.test:${PORT}/x`)})"`),
          "echo; ip route; echo; cat /etc/resolv.conf 2>&1",
          // Long enough for the test to read vm_network_info while the VM still exists.
          "sleep 5"
        ].join("\n")
        const exec = yield* Effect.fork(vms.exec({ vm_id: created.vm_id, command: script, timeout_seconds: 120 }))
        let info = yield* vms.networkInfo(created.vm_id)
        for (let i = 0; i < 600 && info.refused_count < 7; i++) {
          yield* Effect.sleep("100 millis")
          info = yield* vms.networkInfo(created.vm_id)
        }
        const result = yield* Fiber.join(exec)
        const lines = result.stdout.split("\n")
        const line = (name: string) => lines.find((l) => l.startsWith(`${name}: `)) ?? `(no ${name} line)`
        expect(line("ok")).toBe(`ok: ${host1.body(host1.address).trim()} rc=0`)
        expect(line("denied")).toContain("403 pyro: denied.test is not in this VM's allow_hosts")
        expect(line("ip")).toContain(`403 pyro: ${host2.address} is an IP address`)
        expect(line("direct")).toMatch(/Network is unreachable rc=1 [01]s$/)
        expect(line("host header")).toContain("403 pyro: denied.test in the Host header differs from the request's host allowed.test")
        for (const name of ["private", "metadata", "loopback"]) {
          expect(line(name)).toContain(`403 pyro: ${name}.internal.test resolves only to addresses this VM may not reach`)
        }
        expect(line("self")).toContain(`403 pyro: self.internal.test (${HOST_1}.1:${PORT}) is an address this VM may not reach`)
        // No default route and no resolver in the guest.
        expect(result.stdout).not.toContain("default")
        expect(result.stdout).toContain("can't open '/etc/resolv.conf'")
        expect(host1.requests).toEqual([`${host1.address} GET /ok`])
        expect(host2.requests).toEqual([])

        expect(info).toMatchObject({
          network_enabled: true,
          network_policy: "egress",
          allow_hosts: ALLOW,
          gateway: null,
          dns: [],
          proxy: "http://10.0.2.100:3128",
          refused_count: 7
        })
        expect(info.refused_recent.map((r) => r.host)).toEqual([
          "denied.test",
          "private.internal.test",
          "metadata.internal.test",
          "loopback.internal.test",
          "self.internal.test"
        ])
        yield* noLeftovers
      }), 240_000)

    it.scoped("without allow_hosts egress is unchanged: the guest has its route and resolver", () =>
      Effect.gen(function*() {
        const [host1] = yield* hosts
        const { result } = yield* (yield* VmManager).run(Schema.decodeUnknownSync(VmRunInput)({
          environment: "tiny",
          mem_mib: 256,
          network_policy: "egress",
          command: `${wget(`http://allowed.test:${PORT}/direct`)}; env | grep -ci proxy`
        }))
        expect(result).toMatchObject({ network_policy: "egress", allow_hosts: null })
        expect(result.stdout).toBe(`${host1.body(host1.address).trim()} rc=0\n0\n`)
        yield* noLeftovers
      }), 120_000)
  }
)

describe("the operator's allowlist (PYRO_ALLOW_HOSTS, new Pyro({ allowHosts }))", () => {
  layer(testLayer(stateDir), { excludeTestServices: true })((it) => {
    it.scoped("holds a tool caller's egress to it, through the SDK", () =>
      Effect.gen(function*() {
        const [host1] = yield* hosts
        process.env["PYRO_GUEST_DNS"] = DNS
        const pyro = new Pyro({ stateDir, allowHosts: ["allowed.test", "*.internal.test"] })
        yield* Effect.addFinalizer(() => Effect.promise(() => pyro.close()))
        const refused = yield* Effect.promise(() =>
          pyro.runInVm({
            environment: "tiny",
            command: "true",
            network_policy: "egress",
            allow_hosts: ["allowed.test", "denied.test", "*.test"]
          }).then(() => undefined, (e: unknown) => e)
        )
        expect(refused).toBeInstanceOf(PyroError)
        expect((refused as PyroError).code).toBe("invalid_input")
        expect((refused as PyroError).message).toContain(
          "allow_hosts: \"denied.test\", \"*.test\" are not within the operator's allowlist (allowed.test, *.internal.test;"
        )
        // No allow_hosts: the operator's list.
        const result = yield* Effect.promise(() =>
          pyro.runInVm({
            environment: "tiny",
            mem_mib: 256,
            command: `${wget(`http://allowed.test:${PORT}/cap`)}; ${wget(`http://denied.test:${PORT}/cap`)}`,
            network: true
          })
        )
        expect(result).toMatchObject({ network_policy: "egress", allow_hosts: ["allowed.test", "*.internal.test"] })
        expect(result.stdout).toContain(`${host1.body(host1.address).trim()} rc=0`)
        expect(result.stdout).toContain("403 pyro: denied.test is not in this VM's allow_hosts")
        // A network-less VM is untouched by the cap.
        const off = yield* Effect.promise(() => pyro.runInVm({ environment: "tiny", mem_mib: 256, command: "true" }))
        expect(off).toMatchObject({ network_policy: "off", allow_hosts: null })
      }), 240_000)
  })
})
