/**
 * Services in a real workspace, each call a new `pyro` process: a dev server
 * started with http readiness serves a seeded file to later execs and
 * outlives the process that started it; two run at once; stop ends the whole
 * process group; a readiness that never comes fails with the log tails; a bad
 * name is refused before anything runs.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { Pyro } from "../../src/sdk/Pyro.js"
import { cliFor } from "../support/cli.js"
import { makeStateDir, qemuProcessesUnder } from "../support/vm.js"

const stateDir = makeStateDir()
const seed = Fs.mkdtempSync(Path.join(Os.tmpdir(), "pyro-services-seed-"))
let workspaceId = ""

const cli = cliFor(stateDir)
const pyro = cli.pyro

/** A `--json` call that must succeed: its result. */
const json = async (...args: Array<string>) => {
  const r = await cli.json(...args)
  expect(r.code, r.stderr).toBe(0)
  return r.data
}

const exec = (command: string) => pyro("workspace", "exec", workspaceId, "--timeout-seconds", "120", "--", "sh", "-c", command)

/** How many processes of process group `pgid` the guest has (python3: debian has no ps). */
const groupSize = async (pgid: number) => {
  const r = await exec(
    `python3 -c "import os; print(sum(1 for p in os.listdir('/proc') if p.isdigit() and ` +
      `open('/proc/'+p+'/stat').read().rsplit(')',1)[1].split()[2]=='${pgid}'))"`
  )
  return Number(r.stdout.trim())
}

beforeAll(async () => {
  Fs.writeFileSync(Path.join(seed, "hello.txt"), "hello from the seed\n")
  const created = await json("workspace", "create", "debian:12", "--seed-path", seed)
  workspaceId = created["workspace_id"]
}, 600_000)

afterAll(async () => {
  if (workspaceId) await pyro("workspace", "delete", workspaceId)
  for (const pid of qemuProcessesUnder(stateDir)) process.kill(pid, "SIGKILL")
  Fs.rmSync(stateDir, { recursive: true, force: true })
  Fs.rmSync(seed, { recursive: true, force: true })
})

describe("workspace services", () => {
  it("serves a seeded file over http from a service that outlives the process that started it", async () => {
    const started = await json(
      "workspace", "service", "start", workspaceId, "web",
      "--ready-http", "http://127.0.0.1:8000/hello.txt", "--",
      "python3", "-m", "http.server", "8000"
    )
    expect(started).toMatchObject({
      workspace_id: workspaceId,
      service_name: "web",
      command: "python3 -m http.server 8000",
      cwd: "/workspace",
      state: "running",
      readiness: { type: "http", url: "http://127.0.0.1:8000/hello.txt" },
      stop_reason: null,
      ended_at: null,
      exit_code: null
    })
    expect(started["ready_at"]).not.toBeNull()

    // Another process, then execs: the service is still there, still the same process.
    const status = await json("workspace", "service", "status", workspaceId, "web")
    expect(status).toMatchObject({ state: "running", pid: started["pid"] })
    const fetched = await exec(
      `python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8000/hello.txt').read().decode(), end='')"`
    )
    expect(fetched.stdout).toBe("hello from the seed\n")
    expect((await exec("true")).code).toBe(0)
    expect(await json("workspace", "service", "status", workspaceId, "web")).toMatchObject({ state: "running", pid: started["pid"] })

    const logs = await json("workspace", "service", "logs", workspaceId, "web", "--tail-lines", "5")
    expect(logs).toMatchObject({ service_name: "web", tail_lines: 5 })
    expect(logs["stderr"]).toContain("GET /hello.txt")
  }, 300_000)

  it("runs two services at once, and lists them", async () => {
    const second = await json(
      "workspace", "service", "start", workspaceId, "second", "--ready-tcp", "127.0.0.1:8001",
      "--ready-interval-ms", "50", "--", "python3 -m http.server 8001 --bind 127.0.0.1"
    )
    expect(second).toMatchObject({ state: "running", readiness: { type: "tcp", address: "127.0.0.1:8001" } })
    const listed = await json("workspace", "service", "list", workspaceId)
    expect(listed).toMatchObject({ workspace_id: workspaceId, count: 2, running_count: 2 })
    expect(listed["services"].map((s: Record<string, unknown>) => s["service_name"])).toEqual(["web", "second"])
    // A running name is refused.
    const again = await pyro("workspace", "service", "start", workspaceId, "second", "--", "true")
    expect(again.code).toBe(1)
    expect(again.stderr).toContain("already running")
  }, 300_000)

  it("stops a service's whole process group", async () => {
    const group = await json("workspace", "service", "start", workspaceId, "group", "--", "sleep 300 & sleep 301 & wait")
    expect(await groupSize(group["pid"])).toBe(3)
    const stopped = await json("workspace", "service", "stop", workspaceId, "group")
    expect(stopped).toMatchObject({ state: "stopped", stop_reason: "sigterm", pid: group["pid"] })
    expect(stopped["ended_at"]).not.toBeNull()
    expect(await groupSize(group["pid"])).toBe(0)

    for (const name of ["web", "second"]) {
      expect(await json("workspace", "service", "stop", workspaceId, name)).toMatchObject({ state: "stopped", stop_reason: "sigterm" })
    }
    const listed = await json("workspace", "service", "list", workspaceId)
    expect(listed).toMatchObject({ count: 3, running_count: 0 })
  }, 300_000)

  it("fails a service whose readiness never comes, with its log tails", async () => {
    const r = await pyro(
      "workspace", "service", "start", workspaceId, "never", "--ready-file", ".never", "--ready-timeout-seconds", "2", "--",
      "echo starting up; echo something broke >&2; exec sleep 300"
    )
    expect(r.code).toBe(1)
    expect(r.stderr).toContain("not ready (file /workspace/.never) within 2s")
    expect(r.stderr).toContain("starting up")
    expect(r.stderr).toContain("something broke")
    const status = await json("workspace", "service", "status", workspaceId, "never")
    expect(status).toMatchObject({
      state: "failed",
      stop_reason: "ready_timeout",
      ready_at: null,
      readiness: { type: "file", path: "/workspace/.never" }
    })
  }, 300_000)

  it("refuses a bad name before anything runs", async () => {
    const pyroSdk = new Pyro({ stateDir })
    try {
      // An unknown workspace too: the name is refused first, nothing is looked up.
      const refused = await pyroSdk.startService({ workspace_id: "000000000000", service_name: "../etc", command: "true" })
        .catch((e) => e)
      expect(refused.code).toBe("invalid_input")
      expect(refused.message).toContain("service_name")
    } finally {
      await pyroSdk.close()
    }
    const cli = await pyro("workspace", "service", "status", workspaceId, "bad/name")
    expect(cli.code).toBe(2)
  }, 60_000)
})
