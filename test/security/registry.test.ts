/**
 * Registry credentials belong to one registry, and a tool caller cannot make
 * the host talk to a registry on a loopback, private or link-local address
 * unless the operator listed it. Against real registries (CNCF distribution)
 * and a real token server, all on this machine.
 */
import { describe, expect, it, layer } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { isPublicAddress } from "../../src/host/addresses.js"
import { credentialsInAuthFile } from "../../src/oci/credentials.js"
import { pullImage } from "../../src/oci/pull.js"
import { pushEnvironment } from "../../src/oci/push.js"
import { parseReference } from "../../src/oci/reference.js"
import { Caller, OPERATOR, toolCaller } from "../../src/services/Caller.js"
import { ProgressSilent } from "../../src/services/Progress.js"
import { HTPASSWD_USER, registryAvailable, startRegistry, type TestRegistry } from "../support/registry.js"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"

const scratch = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "pyro-registry-security-"))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

const withEnv = (entries: Record<string, string>) => Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(entries))))

const authFile = (dir: string, auths: Record<string, { username: string; password: string }>) => {
  const file = Path.join(dir, `auth-${Math.random().toString(16).slice(2)}.json`)
  Fs.writeFileSync(file, JSON.stringify({
    auths: Object.fromEntries(Object.entries(auths).map(([k, c]) => [k, { auth: Buffer.from(`${c.username}:${c.password}`).toString("base64") }]))
  }))
  return file
}

/** Put a small environment in `registry` as the operator (who may use any registry). */
const seed = (registry: TestRegistry, repo: string, dir: string, client = {}) =>
  Effect.gen(function*() {
    const rootfsPath = Path.join(dir, "rootfs.ext4")
    Fs.writeFileSync(rootfsPath, "rootfs bytes")
    yield* pushEnvironment(registry.ref(repo), { config: "{}", rootfsPath, blobDir: Path.join(dir, "push"), client })
  }).pipe(Effect.provideService(Caller, OPERATOR))

const pull = (ref: ReturnType<TestRegistry["ref"]>, dir: string) =>
  pullImage(ref, { blobDir: Path.join(dir, `pull-${Math.random().toString(16).slice(2)}`) })

const alice = { username: "alice", password: "wonderland" }

describe("addresses", () => {
  it("tells public addresses from the host's and private ones", () => {
    for (const a of ["127.0.0.1", "10.0.2.2", "169.254.169.254", "192.168.1.1", "172.20.0.1", "100.64.0.1", "0.0.0.0", "::1", "fe80::1", "fd00::2", "::ffff:127.0.0.1", "::ffff:7f00:1", "::7f00:1", "::127.0.0.1", "::ffff:0:7f00:1", "64:ff9b::a00:1", "fec0::1", "2001::1", "224.0.0.1"]) {
      expect(isPublicAddress(a, []), a).toBe(false)
    }
    for (const a of ["1.1.1.1", "151.101.2.132", "198.51.100.2", "2a04:4e42::644", "64:ff9b::9765:284", "::ffff:1.1.1.1"]) {
      expect(isPublicAddress(a, []), a).toBe(true)
    }
    expect(isPublicAddress("198.51.100.2", ["198.51.100.2"])).toBe(false)
  })

  it("reads auth.json the way Docker and Podman write it, the longest matching key winning", () => {
    const ref = Either.getOrThrow(parseReference("oci://registry.example:5000/team/app:v1"))
    const text = JSON.stringify({
      auths: {
        "registry.example:5000": { auth: Buffer.from("host:one").toString("base64") },
        "registry.example:5000/team": { auth: Buffer.from("team:two").toString("base64") },
        "https://other.example/v1/": { auth: Buffer.from("other:three").toString("base64") }
      }
    })
    const found = credentialsInAuthFile(text, ref)
    expect(found?.username).toBe("team")
    expect(Redacted.value(found!.password)).toBe("two")
    expect(credentialsInAuthFile(text, Either.getOrThrow(parseReference("oci://other.example/x")))?.username).toBe("other")
    expect(credentialsInAuthFile(text, Either.getOrThrow(parseReference("oci://third.example/x")))).toBeUndefined()
  })
})

describe.skipIf(!registryAvailable())("registry", () => {
  layer(ProgressSilent, { timeout: "60 seconds", excludeTestServices: true })("credentials and addresses", (it) => {
    it.scoped("PYRO_REGISTRY_USERNAME/PASSWORD go to PYRO_REGISTRY's registry and no other", () =>
      Effect.gen(function*() {
        const dir = yield* scratch
        const home = yield* startRegistry({ kind: "token", credentials: alice })
        const other = yield* startRegistry({ kind: "htpasswd" })
        yield* seed(home, "pyro/env:v1", dir, { credentials: { username: alice.username, password: Redacted.make(alice.password) } })
        yield* seed(other, "pyro/env:v1", dir, { credentials: { username: HTPASSWD_USER.username, password: Redacted.make(HTPASSWD_USER.password) } })
        const env = withEnv({
          PYRO_REGISTRY: `oci://${home.host}/pyro`,
          PYRO_REGISTRY_USERNAME: alice.username,
          PYRO_REGISTRY_PASSWORD: alice.password,
          HOME: dir
        })
        yield* pull(home.ref("pyro/env:v1"), dir).pipe(env, Effect.provideService(Caller, OPERATOR))
        expect(home.tokenRequests.some((r) => r.account === "alice" && r.granted)).toBe(true)
        // The other registry asks for Basic: had alice's password been sent, it would say it rejected it.
        const error = yield* Effect.flip(pull(other.ref("pyro/env:v1"), dir).pipe(env, Effect.provideService(Caller, OPERATOR)))
        expect(error._tag).toBe("RegistryAuthRequired")
        expect(error.message).toContain("registry requires credentials")
      }))

    it.scoped("an auth.json entry is used for its own registry only", () =>
      Effect.gen(function*() {
        const dir = yield* scratch
        const basic = yield* startRegistry({ kind: "htpasswd" })
        const tokens = yield* startRegistry({ kind: "token", credentials: alice })
        yield* seed(basic, "pyro/env:v1", dir, { credentials: { username: HTPASSWD_USER.username, password: Redacted.make(HTPASSWD_USER.password) } })
        yield* seed(tokens, "pyro/env:v1", dir, { credentials: { username: alice.username, password: Redacted.make(alice.password) } })
        const file = authFile(dir, { [basic.host]: HTPASSWD_USER })
        const env = withEnv({ REGISTRY_AUTH_FILE: file, HOME: dir })
        yield* pull(basic.ref("pyro/env:v1"), dir).pipe(env, Effect.provideService(Caller, OPERATOR))
        const before = tokens.tokenRequests.length
        yield* Effect.flip(pull(tokens.ref("pyro/env:v1"), dir).pipe(env, Effect.provideService(Caller, OPERATOR)))
        expect(tokens.tokenRequests.slice(before).every((r) => !r.authorization && r.account === undefined)).toBe(true)
      }))

    it.scoped("credentials never go to a token realm on another host", () =>
      Effect.gen(function*() {
        const dir = yield* scratch
        // The registry (127.0.0.1) names a realm on "localhost": another host name, whatever it resolves to.
        const registry = yield* startRegistry({ kind: "token", credentials: alice, realmHost: "localhost" })
        const file = authFile(dir, { [registry.host]: alice })
        const error = yield* Effect.flip(pull(registry.ref("pyro/env:v1"), dir).pipe(
          withEnv({ REGISTRY_AUTH_FILE: file, HOME: dir }),
          Effect.provideService(Caller, OPERATOR)
        ))
        expect(registry.tokenRequests.length).toBeGreaterThan(0)
        expect(registry.tokenRequests.every((r) => !r.authorization)).toBe(true)
        expect(error.message).toContain(`not sent to a token service on another host`)
      }))

    it.scoped("a tool caller cannot name a registry on a loopback address, by address or by name, unless the operator listed it", () =>
      Effect.gen(function*() {
        const dir = yield* scratch
        const registry = yield* startRegistry({ kind: "none" })
        yield* seed(registry, "pyro/env:v1", dir)
        const asTool = Effect.provideService(Caller, toolCaller())
        const byAddress = yield* Effect.flip(pull(registry.ref("pyro/env:v1"), dir).pipe(withEnv({ HOME: dir }), asTool))
        expect(byAddress.message).toContain("refused: 127.0.0.1 is a loopback, private or link-local address")
        const port = registry.host.split(":")[1]
        const byName = Either.getOrThrow(parseReference(`oci://localhost:${port}/pyro/env:v1`))
        const viaName = yield* Effect.flip(pull(byName, dir).pipe(withEnv({ HOME: dir }), asTool))
        expect(viaName.message).toContain("refused: localhost is 127.0.0.1, a loopback, private or link-local address")
        // Listed by the operator, it may be named.
        const listed = yield* pull(registry.ref("pyro/env:v1"), dir).pipe(withEnv({ HOME: dir, PYRO_PRIVATE_REGISTRIES: registry.host }), asTool)
        expect(listed.kind).toBe("pyro-environment")
      }))
  })
})
