/** Registry authentication against real registries: token auth (with a token server run here) and htpasswd. */
import { asOperator } from "../support/vm.js"
import { describe, expect, layer } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import type { RegistryClientOptions } from "../../src/oci/client.js"
import { pullImage } from "../../src/oci/pull.js"
import { pushEnvironment } from "../../src/oci/push.js"
import { ProgressSilent } from "../../src/services/Progress.js"
import { HTPASSWD_USER, Registry, registryAvailable, registryLayer } from "../support/registry.js"

const tempDir = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "pyro-oci-auth-"))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

/** Push a small environment to `repo` and pull it back, returning the pulled config. */
const roundTrip = (repo: string, options: { readonly client?: RegistryClientOptions } = {}) =>
  Effect.gen(function*() {
    const registry = yield* Registry
    const dir = yield* tempDir
    const rootfsPath = Path.join(dir, "rootfs.ext4")
    Fs.writeFileSync(rootfsPath, "rootfs bytes")
    const ref = registry.ref(repo)
    const client = options.client ? { client: options.client } : {}
    const digest = yield* pushEnvironment(ref, { config: "{\"name\":\"auth\"}", rootfsPath, blobDir: Path.join(dir, "push"), ...client })
    const pulled = yield* pullImage(ref, { blobDir: Path.join(dir, "pull"), ...client })
    expect(pulled.manifestDigest).toBe(digest)
    return pulled
  })

/** PYRO_REGISTRY_USERNAME / PASSWORD, which belong to PYRO_REGISTRY's registry (here, the test's). */
const withCredentials = (registry: string, username: string, password: string) =>
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map([
    ["PYRO_REGISTRY", `oci://${registry}/pyro`],
    ["PYRO_REGISTRY_USERNAME", username],
    ["PYRO_REGISTRY_PASSWORD", password]
  ])))

const anonymous = Effect.withConfigProvider(ConfigProvider.fromMap(new Map()))

describe.skipIf(!registryAvailable())("registry authentication", () => {
  layer(Layer.mergeAll(registryLayer({ kind: "token" }), ProgressSilent, asOperator), { timeout: "60 seconds", excludeTestServices: true })(
    "with anonymous bearer tokens",
    (it) => {
      it.scoped("fetches a token when challenged, and reuses it", () =>
        Effect.gen(function*() {
          const registry = yield* Registry
          const pulled = yield* roundTrip("pyro/token-env:v1").pipe(anonymous)
          expect(pulled.kind === "pyro-environment" && pulled.config).toEqual({ name: "auth" })
          // One token for the push (pull,push scope), one for the pull: not one per request.
          expect(registry.tokenRequests.length).toBe(2)
          expect(registry.tokenRequests[0]!.scopes).toContain("repository:pyro/token-env:pull,push")
          expect(registry.tokenRequests[1]!.scopes).toEqual(["repository:pyro/token-env:pull"])
          expect(registry.tokenRequests.every((r) => r.account === undefined && r.granted)).toBe(true)
        }))
    }
  )

  const credentials = { username: "alice", password: "wonderland" }
  layer(Layer.mergeAll(registryLayer({ kind: "token", credentials }), ProgressSilent, asOperator), { timeout: "60 seconds", excludeTestServices: true })(
    "with a token server that wants a login",
    (it) => {
      it.scoped("says that credentials are required", () =>
        Effect.gen(function*() {
          const registry = yield* Registry
          const error = yield* Effect.flip(pullImage(registry.ref("pyro/private:v1"), { blobDir: "/nonexistent" })).pipe(anonymous)
          expect(error._tag).toBe("RegistryAuthRequired")
          expect(error.message).toContain("registry requires credentials")
          expect(error.message).toContain(`oci://${registry.host}/pyro/private:v1`)
        }))

      it.scoped("logs in with PYRO_REGISTRY_USERNAME / PYRO_REGISTRY_PASSWORD", () =>
        Effect.gen(function*() {
          const registry = yield* Registry
          yield* roundTrip("pyro/private:v1").pipe(withCredentials((yield* Registry).host, credentials.username, credentials.password))
          expect(registry.tokenRequests.some((r) => r.account === "alice" && r.granted)).toBe(true)
        }))

      it.scoped("reports rejected credentials", () =>
        Effect.gen(function*() {
          const registry = yield* Registry
          const error = yield* Effect.flip(pullImage(registry.ref("pyro/private:v1"), {
            blobDir: "/nonexistent",
            client: { credentials: { username: "alice", password: Redacted.make("wrong") } }
          }))
          expect(error._tag).toBe("RegistryAuthFailed")
          expect(error.message).toContain("HTTP 401")
        }))
    }
  )

  layer(Layer.mergeAll(registryLayer({ kind: "htpasswd" }), ProgressSilent, asOperator), { timeout: "60 seconds", excludeTestServices: true })(
    "with Basic authentication",
    (it) => {
      it.scoped("says that credentials are required", () =>
        Effect.gen(function*() {
          const registry = yield* Registry
          const error = yield* Effect.flip(pullImage(registry.ref("pyro/basic:v1"), { blobDir: "/nonexistent" })).pipe(anonymous)
          expect(error._tag).toBe("RegistryAuthRequired")
          expect(error.message).toContain("registry requires credentials")
        }))

      it.scoped("logs in with credentials", () =>
        roundTrip("pyro/basic:v1", {
          client: { credentials: { username: HTPASSWD_USER.username, password: Redacted.make(HTPASSWD_USER.password) } }
        }))

      it.scoped("reports rejected credentials", () =>
        Effect.gen(function*() {
          const registry = yield* Registry
          const error = yield* Effect.flip(pullImage(registry.ref("pyro/basic:v1"), { blobDir: "/nonexistent" })).pipe(
            withCredentials(registry.host, HTPASSWD_USER.username, "wrong")
          )
          expect(error._tag).toBe("RegistryAuthFailed")
          expect(error.message).toContain("rejected the credentials")
        }))
    }
  )
})
