/**
 * Published ports, through the real CLI (each call a new process): a
 * `debian:12` workspace with network_policy egress+published-ports runs
 * `python3 -m http.server` as a service with http readiness and a published
 * port, and this host fetches a seeded file from 127.0.0.1 through it. The
 * port lives exactly as long as the service; a taken host port or a
 * workspace without the policy is refused and leaves nothing running.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Effect from "effect/Effect"
import { cliFor } from "../support/cli.js"
import { eventually, forwarders, makeStateDir } from "../support/vm.js"

const stateDir = makeStateDir()
const seed = Fs.mkdtempSync(Path.join(Os.tmpdir(), "pyro-ports-seed-"))
let workspaceId = ""

const { json, pyro, removeAll } = cliFor(stateDir)

const refused = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = Net.connect({ host: "127.0.0.1", port })
    socket.once("connect", () => {
      socket.destroy()
      resolve(false)
    })
    socket.once("error", () => resolve(true))
  })

beforeAll(async () => {
  Fs.writeFileSync(Path.join(seed, "hello.txt"), "hello through a published port\n")
  const created = await json("workspace", "create", "debian:12", "--network-policy", "egress+published-ports", "--seed-path", seed)
  expect(created.code, created.stderr).toBe(0)
  workspaceId = created.data["workspace_id"]
  expect(created.data["network_policy"]).toBe("egress+published-ports")
}, 600_000)

afterAll(async () => {
  await removeAll(workspaceId)
  Fs.rmSync(seed, { recursive: true, force: true })
})

describe("published ports", () => {
  it("serves a seeded file from the guest's http.server at 127.0.0.1 on the host while the service runs", async () => {
    const started = await json(
      "workspace", "service", "start", workspaceId, "web", "--ready-http", "http://127.0.0.1:8000/", "--publish", "8000",
      "--", "python3", "-m", "http.server", "8000"
    )
    expect(started.code, started.stderr).toBe(0)
    const [published] = started.data["published_ports"]
    expect(published).toMatchObject({ guest_port: 8000, host: "127.0.0.1" })
    const port = published.host_port as number

    // From a process on this host, several times and at once.
    const bodies = await Promise.all([1, 2, 3].map(() => fetch(`http://127.0.0.1:${port}/hello.txt`).then((r) => r.text())))
    expect(bodies).toEqual(Array(3).fill("hello through a published port\n"))

    const status = await json("workspace", "service", "status", workspaceId, "web")
    expect(status.data["published_ports"]).toEqual([{ guest_port: 8000, host_port: port, host: "127.0.0.1" }])
    const list = await json("workspace", "service", "list", workspaceId)
    expect(list.data["services"][0]["published_ports"]).toEqual([{ guest_port: 8000, host_port: port, host: "127.0.0.1" }])

    // Stopped: the port is gone with it.
    const stopped = await json("workspace", "service", "stop", workspaceId, "web")
    expect(stopped.data).toMatchObject({ state: "stopped", published_ports: [] })
    expect(await Effect.runPromise(eventually(() => forwarders(workspaceId).length === 0))).toBe(true)
    expect(await refused(port)).toBe(true)
  }, 600_000)

  it("closes the port when the service ends by itself", async () => {
    const started = await json(
      "workspace", "service", "start", workspaceId, "brief", "--ready-tcp", "127.0.0.1:8001", "--publish", "8001",
      "--", "sh", "-c", "python3 -m http.server 8001 & sleep 3; kill $!"
    )
    expect(started.code, started.stderr).toBe(0)
    const port = started.data["published_ports"][0]["host_port"] as number
    expect(await Effect.runPromise(eventually(() => forwarders(workspaceId).length === 0, 30_000))).toBe(true)
    expect(await refused(port)).toBe(true)
  }, 600_000)

  it("refuses a host port in use, and leaves no service running", async () => {
    const taken = Net.createServer().listen(0, "127.0.0.1")
    await new Promise((r) => taken.once("listening", r))
    const port = (taken.address() as Net.AddressInfo).port
    try {
      const r = await json(
        "workspace", "service", "start", workspaceId, "clash", "--publish", `${port}:8002`,
        "--", "python3", "-m", "http.server", "8002"
      )
      expect(r.code).not.toBe(0)
      expect(r.stderr).toContain(`host port ${port} is in use on 127.0.0.1`)
      const listed = await json("workspace", "service", "list", workspaceId)
      expect(listed.data["services"].map((s: Record<string, unknown>) => s["service_name"])).not.toContain("clash")
    } finally {
      taken.close()
    }
  }, 600_000)

  it("refuses published ports in a workspace whose policy does not allow them", async () => {
    const other = await json("workspace", "create", "tiny", "--mem-mib", "256")
    expect(other.code, other.stderr).toBe(0)
    const id = other.data["workspace_id"]
    try {
      const r = await json("workspace", "service", "start", id, "web", "--publish", "8000", "--", "sleep", "60")
      expect(r.code).not.toBe(0)
      expect(r.stderr).toContain("network_policy is off")
      const listed = await json("workspace", "service", "list", id)
      expect(listed.data["count"]).toBe(0)
    } finally {
      await pyro("workspace", "delete", id)
    }
  }, 300_000)
})
