/**
 * NODE_EXTRA_CA_CERTS through bin/pyro.js's first line: Node starts without it (it
 * would parse the file at every start), and the registry client trusts its CAs for a
 * pull all the same (src/host/extraCaCerts.ts). Over real TLS: a registry stand-in on
 * 127.0.0.2 (not a loopback name pyro speaks plain HTTP to) whose certificate only
 * the extra file vouches for; it answers every manifest with 404, so a pull that got
 * through TLS fails with the registry's own answer, and one that did not, with the
 * certificate's.
 */
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Https from "node:https"
import * as Os from "node:os"
import * as Path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { runProcess } from "../support/cli.js"
import { pyroBin } from "../support/vm.js"

const HOST = "127.0.0.2"

describe("the operator's extra CAs (NODE_EXTRA_CA_CERTS)", () => {
  let dir = ""
  let server: Https.Server | undefined
  let reference = ""

  beforeAll(async () => {
    dir = Fs.mkdtempSync(Path.join(process.env.PYRO_TEST_RUN_ROOT ?? Os.tmpdir(), "extra-ca-"))
    execFileSync("openssl", [
      "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2", "-subj", `/CN=${HOST}`,
      "-addext", `subjectAltName=IP:${HOST}`, "-keyout", Path.join(dir, "key.pem"), "-out", Path.join(dir, "ca.pem")
    ], { stdio: "pipe" })
    const tls = { key: Fs.readFileSync(Path.join(dir, "key.pem")), cert: Fs.readFileSync(Path.join(dir, "ca.pem")) }
    const listening = Https.createServer(tls, (req, res) => {
      res.setHeader("content-type", "application/json")
      if (req.url === "/v2/") return res.end("{}")
      res.statusCode = 404
      res.end(JSON.stringify({ errors: [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown" }] }))
    })
    server = listening
    const port = await new Promise<number>((resolve) =>
      listening.listen(0, HOST, () => resolve((listening.address() as { port: number }).port))
    )
    reference = `oci://${HOST}:${port}/pyro/absent:v1`
  })
  afterAll(() => {
    server?.close()
    Fs.rmSync(dir, { recursive: true, force: true })
  })

  const pull = (command: string, args: Array<string>, extraCa: string | undefined) => {
    const env: NodeJS.ProcessEnv = { ...process.env, PYRO_STATE_DIR: Path.join(dir, "state"), PYRO_CACHE_DIR: Path.join(dir, "cache") }
    delete env.NODE_EXTRA_CA_CERTS
    delete env.PYRO_NODE_EXTRA_CA_CERTS
    if (extraCa) env.NODE_EXTRA_CA_CERTS = extraCa
    return runProcess(command, [...args, "env", "pull", reference], { env })
  }

  it("are trusted by a pull when pyro runs as a command (its first line hands them on)", async () => {
    const trusted = await pull(pyroBin, [], Path.join(dir, "ca.pem"))
    expect(trusted.code).toBe(1)
    expect(trusted.stderr).toContain("MANIFEST_UNKNOWN")

    const untrusted = await pull(pyroBin, [], undefined)
    expect(untrusted.code).toBe(1)
    expect(untrusted.stderr).toContain("self-signed certificate")
    expect(untrusted.stderr).not.toContain("MANIFEST_UNKNOWN")
  }, 60_000)

  it("are trusted by a pull under `node bin/pyro.js`, where Node read them itself", async () => {
    const trusted = await pull(process.execPath, [pyroBin], Path.join(dir, "ca.pem"))
    expect(trusted.code).toBe(1)
    expect(trusted.stderr).toContain("MANIFEST_UNKNOWN")
  }, 60_000)

  it("are ignored with a warning when the file cannot be read, as Node ignores it: by the pull, not at Node's start", async () => {
    const missing = Path.join(dir, "missing.pem")
    const r = await pull(pyroBin, [], missing)
    expect(r.code).toBe(1)
    expect(r.stderr.split("Ignoring extra certs from").length - 1).toBe(1)
    expect(r.stderr).toContain("self-signed certificate")

    // The command's Node never read the file (its first line kept the variable from it); a Node given it does, at once.
    const env = { ...process.env, NODE_EXTRA_CA_CERTS: missing }
    const command = await runProcess(pyroBin, ["--version"], { env })
    expect(command.code).toBe(0)
    expect(command.stderr).toBe("")
    const direct = await runProcess(process.execPath, [pyroBin, "--version"], { env })
    expect(direct.stderr).toContain("Ignoring extra certs from")
  }, 60_000)

  it("go back to the programs pyro runs (claude, codex, git...), not only to its own pulls", async () => {
    const { caEnvForPrograms } = await import("../../src/host/extraCaCerts.js")
    const saved = { node: process.env.NODE_EXTRA_CA_CERTS, handed: process.env.PYRO_NODE_EXTRA_CA_CERTS }
    try {
      delete process.env.NODE_EXTRA_CA_CERTS
      process.env.PYRO_NODE_EXTRA_CA_CERTS = Path.join(dir, "ca.pem")
      expect(caEnvForPrograms()).toEqual({ NODE_EXTRA_CA_CERTS: Path.join(dir, "ca.pem") })
      process.env.PYRO_NODE_EXTRA_CA_CERTS = ""
      expect(caEnvForPrograms()).toEqual({})
    } finally {
      if (saved.node === undefined) delete process.env.NODE_EXTRA_CA_CERTS
      else process.env.NODE_EXTRA_CA_CERTS = saved.node
      if (saved.handed === undefined) delete process.env.PYRO_NODE_EXTRA_CA_CERTS
      else process.env.PYRO_NODE_EXTRA_CA_CERTS = saved.handed
    }
  })
})
