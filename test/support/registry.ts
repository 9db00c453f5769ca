/**
 * A real registry for tests: Debian's docker-registry (CNCF distribution v2)
 * on a free loopback port, storing into a temp directory. Optionally with
 * token auth, the realm being a small token server started here that signs
 * JWTs with a key made by the openssl CLI; or with htpasswd (Basic) auth.
 * Everything is a scoped resource: the process is killed (SIGKILL if SIGTERM
 * is ignored) and the directory removed when the scope closes.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { parseReference, type ImageReference } from "../../src/oci/reference.js"

export const REGISTRY_BINARY = "/usr/bin/docker-registry"

export const registryAvailable = () => Fs.existsSync(REGISTRY_BINARY)

export interface TestRegistry {
  /** `127.0.0.1:PORT` */
  readonly host: string
  /** The registry's storage root (filesystem driver rootdirectory). */
  readonly storageDir: string
  /** `oci://HOST/<rest>` parsed. */
  readonly ref: (rest: string) => ImageReference
  /** Where the registry keeps a blob's bytes, to tamper with. */
  readonly blobDataPath: (digest: string) => string
  /** Requests the token server has answered (token registries only). */
  readonly tokenRequests: ReadonlyArray<TokenRequest>
}

export interface TokenRequest {
  readonly scopes: ReadonlyArray<string>
  readonly account: string | undefined
  readonly granted: boolean
  /** The request carried an Authorization header (credentials). */
  readonly authorization: boolean
}

export interface Credentials {
  readonly username: string
  readonly password: string
}

export type RegistryAuth =
  | { readonly kind: "none" }
  /**
   * Token auth; with `credentials`, the token server refuses anyone else.
   * `realmHost`: the host name the realm is announced under (default 127.0.0.1).
   */
  | { readonly kind: "token"; readonly credentials?: Credentials; readonly realmHost?: string }
  /** Basic auth against an htpasswd file holding HTPASSWD_USER. */
  | { readonly kind: "htpasswd" }

/** The one user of the htpasswd registry; the hash is bcrypt (cost 4) of this password. */
export const HTPASSWD_USER: Credentials = { username: "pyro", password: "pyro-test-password" }
const HTPASSWD_LINE = "pyro:$2b$04$du/U1REQvqO0pAtijIosJO1aBO9umtXofjYLsBV3quuK8d6gol3/y\n"

const TOKEN_SERVICE = "pyro-test-registry"
const TOKEN_ISSUER = "pyro-test-token-issuer"

const freePort = () =>
  Effect.async<number, Error>((resume) => {
    const server = Net.createServer()
    server.once("error", (e) => resume(Effect.fail(e)))
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address ? address.port : 0
      server.close(() => resume(Effect.succeed(port)))
    })
  })

const tempDir = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "pyro-registry-"))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

const base64url = (data: string | Buffer) => Buffer.from(data).toString("base64url")

/** A token server for distribution's `auth.token`: RS256 JWTs with the signing cert in `x5c`. */
const startTokenServer = (
  dir: string,
  credentials: Credentials | undefined,
  log: Array<TokenRequest>,
  realmHost = "127.0.0.1"
) =>
  Effect.gen(function*() {
    const keyPath = Path.join(dir, "token.key")
    const certPath = Path.join(dir, "token.crt")
    yield* Effect.try(() =>
      execFileSync("openssl", [
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
        "-subj", `/CN=${TOKEN_ISSUER}`, "-keyout", keyPath, "-out", certPath
      ], { stdio: "pipe" })
    )
    const key = Fs.readFileSync(keyPath, "utf8")
    const certDer = new Crypto.X509Certificate(Fs.readFileSync(certPath)).raw.toString("base64")

    const sign = (access: ReadonlyArray<{ type: string; name: string; actions: ReadonlyArray<string> }>, subject: string) => {
      const now = Math.floor(Date.now() / 1000)
      const header = base64url(JSON.stringify({ typ: "JWT", alg: "RS256", x5c: [certDer] }))
      const claims = base64url(JSON.stringify({
        iss: TOKEN_ISSUER,
        sub: subject,
        aud: TOKEN_SERVICE,
        exp: now + 300,
        nbf: now - 30,
        iat: now,
        jti: Crypto.randomBytes(8).toString("hex"),
        access
      }))
      const signature = Crypto.sign("sha256", Buffer.from(`${header}.${claims}`), key).toString("base64url")
      return `${header}.${claims}.${signature}`
    }

    const server = Http.createServer((req, res) => {
      const url = new URL(req.url ?? "/", "http://localhost")
      const scopes = url.searchParams.getAll("scope")
      const account = url.searchParams.get("account") ?? undefined
      const expected = credentials
        ? `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString("base64")}`
        : undefined
      const granted = url.pathname === "/token" && (expected === undefined || req.headers.authorization === expected)
      log.push({ scopes, account, granted, authorization: req.headers.authorization !== undefined })
      if (!granted) {
        res.writeHead(401, { "content-type": "application/json" })
        res.end(JSON.stringify({ details: "unauthorized" }))
        return
      }
      const access = scopes.flatMap((scope) => {
        const [type, name, actions] = scope.split(":")
        return type && name && actions ? [{ type, name, actions: actions.split(",") }] : []
      })
      res.writeHead(200, { "content-type": "application/json" })
      res.end(JSON.stringify({ token: sign(access, credentials?.username ?? ""), expires_in: 300 }))
    })
    const port = yield* Effect.acquireRelease(
      Effect.async<number, Error>((resume) => {
        server.once("error", (e) => resume(Effect.fail(e)))
        server.listen(0, "127.0.0.1", () => {
          const address = server.address()
          resume(Effect.succeed(typeof address === "object" && address ? address.port : 0))
        })
      }),
      () => Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
    )
    return { realm: `http://${realmHost}:${port}/token`, certPath }
  })

const waitForExit = (child: ChildProcess, ms: number) =>
  Effect.async<boolean>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.succeed(true))
    const timer = setTimeout(() => resume(Effect.succeed(false)), ms)
    child.once("exit", () => {
      clearTimeout(timer)
      resume(Effect.succeed(true))
    })
    return Effect.sync(() => clearTimeout(timer))
  })

const spawnRegistry = (configPath: string) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const child = spawn(REGISTRY_BINARY, ["serve", configPath], { stdio: ["ignore", "ignore", "pipe"] })
      const output = { text: "" }
      child.stderr?.on("data", (chunk: Buffer) => {
        output.text = (output.text + chunk.toString()).slice(-8192)
      })
      child.on("error", (e) => {
        output.text += `\n${e.message}`
      })
      return { child, output }
    }),
    ({ child }) =>
      Effect.gen(function*() {
        if (child.exitCode !== null || child.signalCode !== null) return
        child.kill("SIGTERM")
        if (yield* waitForExit(child, 3000)) return
        child.kill("SIGKILL")
        yield* waitForExit(child, 5000)
      })
  )

/** Start a registry; it stops, and its storage is removed, when the scope closes. */
export const startRegistry = (auth: RegistryAuth = { kind: "none" }): Effect.Effect<TestRegistry, Error, Scope.Scope> =>
  Effect.gen(function*() {
    const dir = yield* tempDir
    const storageDir = Path.join(dir, "storage")
    Fs.mkdirSync(storageDir)
    const port = yield* freePort()
    const host = `127.0.0.1:${port}`
    const tokenRequests: Array<TokenRequest> = []

    let authConfig = ""
    if (auth.kind === "token") {
      const token = yield* startTokenServer(dir, auth.credentials, tokenRequests, auth.realmHost)
      authConfig = [
        "auth:",
        "  token:",
        `    realm: ${token.realm}`,
        `    service: ${TOKEN_SERVICE}`,
        `    issuer: ${TOKEN_ISSUER}`,
        `    rootcertbundle: ${token.certPath}`
      ].join("\n")
    } else if (auth.kind === "htpasswd") {
      const htpasswd = Path.join(dir, "htpasswd")
      Fs.writeFileSync(htpasswd, HTPASSWD_LINE)
      authConfig = ["auth:", "  htpasswd:", "    realm: pyro-test", `    path: ${htpasswd}`].join("\n")
    }
    const configPath = Path.join(dir, "config.yml")
    Fs.writeFileSync(configPath, [
      "version: 0.1",
      "log:",
      "  level: error",
      "  accesslog:",
      "    disabled: true",
      "storage:",
      "  filesystem:",
      `    rootdirectory: ${storageDir}`,
      "  delete:",
      "    enabled: true",
      "http:",
      `  addr: ${host}`,
      authConfig,
      ""
    ].join("\n"))

    const { child, output } = yield* spawnRegistry(configPath)
    const exited = () => child.exitCode !== null || child.signalCode !== null
    yield* Effect.tryPromise({
      try: (signal) => fetch(`http://${host}/v2/`, { signal }).then((r) => r.body?.cancel()),
      catch: (e) => e
    }).pipe(
      Effect.timeout("1 second"),
      Effect.retry({ schedule: Schedule.spaced("50 millis"), while: () => !exited() }),
      Effect.timeout("20 seconds"),
      Effect.mapError(() => new Error(`docker-registry did not start on ${host}:\n${output.text}`))
    )

    return {
      host,
      storageDir,
      ref: (rest: string) => Either.getOrThrow(parseReference(`oci://${host}/${rest}`)),
      blobDataPath: (digest: string) => {
        const hex = digest.replace(/^sha256:/, "")
        return Path.join(storageDir, "docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex, "data")
      },
      tokenRequests
    } satisfies TestRegistry
  })

/** The registry of a `layer(...)` test block. */
export class Registry extends Context.Tag("test/Registry")<Registry, TestRegistry>() {}

export const registryLayer = (auth: RegistryAuth = { kind: "none" }) => Layer.scoped(Registry, startRegistry(auth))
