/**
 * The content-addressed blob cache: `blobDir/sha256/<hex>`. A blob is
 * downloaded to a `*.partial-<pid>-<hex>` file beside its final name, hashed
 * and counted as it streams in, and renamed into place only once its size and
 * digest match its descriptor; on any failure or interruption the partial
 * file is removed. A cached blob is re-verified before use and downloaded
 * again if it does not match.
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as Crypto from "node:crypto"
import * as FsP from "node:fs/promises"
import * as Path from "node:path"
import type { RegistryClient } from "./client.js"
import { hashFile as hostHashFile } from "../host/files.js"
import { digestHex, sha256Digest, shortDigest } from "./digest.js"
import { DigestMismatch, DocumentTooLarge, OciIoError, type RegistryUnreachable, SizeMismatch } from "./errors.js"
import { commitTempFile, io, lstatIfExists, openTempFile, partialPath, writeAll } from "./io.js"
import type { Descriptor } from "./manifest.js"
import { report } from "../services/Progress.js"

/** Where the blob with `digest` lives in the cache. */
export const blobPath = (blobDir: string, digest: string) => Path.join(blobDir, "sha256", digestHex(digest))

const PROGRESS_INTERVAL_MS = 250

/** sha256 of a file, streamed. */
export const hashFile = (path: string): Effect.Effect<{ readonly digest: string; readonly size: number }, OciIoError> =>
  hostHashFile(path).pipe(
    Effect.map(({ sha256, size }) => ({ digest: sha256Digest(sha256), size })),
    Effect.mapError((cause) => new OciIoError({ op: "read", path, cause }))
  )

/** Whether the cached file at `path` is exactly the blob `descriptor` describes. */
export const verifyBlobFile = (path: string, descriptor: Pick<Descriptor, "digest" | "size">) =>
  Effect.gen(function*() {
    const stat = yield* lstatIfExists(path)
    if (!stat || !stat.isFile() || stat.size !== descriptor.size) return false
    const { digest } = yield* hashFile(path)
    return digest === descriptor.digest
  })

export interface FetchBlobOptions {
  readonly blobDir: string
  /** Refuse a descriptor declaring more than this many bytes (configs: MAX_DOCUMENT_BYTES). */
  readonly maxSize?: number
  /** "layer", "config", "rootfs": used in errors. */
  readonly what?: string
}

/** The path of the verified blob in the cache, downloading it if needed. */
export const fetchBlob = (client: RegistryClient, descriptor: Descriptor, options: FetchBlobOptions) =>
  Effect.gen(function*() {
    const what = `${options.what ?? "blob"} ${descriptor.digest}`
    if (options.maxSize !== undefined && descriptor.size > options.maxSize) {
      return yield* new DocumentTooLarge({ reference: client.label, what, limit: options.maxSize })
    }
    const target = blobPath(options.blobDir, descriptor.digest)
    const short = shortDigest(descriptor.digest)
    if (yield* verifyBlobFile(target, descriptor)) {
      yield* report({ scope: "pull", phase: "cached", fields: { layer: short, bytes: descriptor.size }, fraction: 1 })
      return target
    }
    yield* io("remove", target, () => FsP.rm(target, { force: true }))
    yield* io("mkdir", Path.dirname(target), () => FsP.mkdir(Path.dirname(target), { recursive: true }))
    yield* Effect.scoped(download(client, descriptor, target, what))
    return target
  })

const download = (client: RegistryClient, descriptor: Descriptor, target: string, what: string) =>
  Effect.gen(function*() {
    const tmp = partialPath(target)
    const file = yield* openTempFile(tmp)
    const request = { method: "GET", url: client.repoPath(`/blobs/${descriptor.digest}`), access: "pull" } as const
    const response = yield* client.send(request)
    if (response.status !== 200) return yield* client.unexpected(request, response, what)
    const declared = Number(response.headers.get("content-length") ?? "NaN")
    if (Number.isFinite(declared) && declared > descriptor.size) {
      yield* client.discard(response)
      return yield* new SizeMismatch({ reference: client.label, what, kind: "oversized", expected: descriptor.size, actual: declared })
    }

    const short = shortDigest(descriptor.digest)
    const hash = Crypto.createHash("sha256")
    let received = 0
    let lastReport = 0
    const progress = (force: boolean) => {
      const now = Date.now()
      if (!force && now - lastReport < PROGRESS_INTERVAL_MS) return Effect.void
      lastReport = now
      return report({
        scope: "pull",
        phase: "download",
        fields: { layer: short, bytes: received, total: descriptor.size },
        fraction: descriptor.size === 0 ? 1 : received / descriptor.size
      })
    }

    yield* progress(true)
    yield* client.body(request, response).pipe(
      Stream.runForEach((chunk) =>
        Effect.gen(function*() {
          received += chunk.byteLength
          if (received > descriptor.size) {
            return yield* new SizeMismatch({ reference: client.label, what, kind: "oversized", expected: descriptor.size, actual: received })
          }
          hash.update(chunk)
          yield* writeAll(file.handle, tmp, chunk)
          yield* progress(false)
        })
      ),
      // A connection that breaks part way is a truncated download like one that ends early.
      Effect.catchTag("RegistryUnreachable", (error) =>
        Effect.fail<SizeMismatch | RegistryUnreachable>(
          received < descriptor.size
            ? new SizeMismatch({ reference: client.label, what, kind: "truncated", expected: descriptor.size, actual: received })
            : error
        ))
    )
    if (received < descriptor.size) {
      return yield* new SizeMismatch({ reference: client.label, what, kind: "truncated", expected: descriptor.size, actual: received })
    }
    const actual = `sha256:${hash.digest("hex")}`
    if (actual !== descriptor.digest) {
      return yield* new DigestMismatch({ reference: client.label, what, expected: descriptor.digest, actual })
    }
    yield* commitTempFile(file, tmp, target)
    yield* progress(true)
  })

/** Read a (small, already size-checked) cached blob into memory. */
export const readBlob = (path: string) => io("read", path, () => FsP.readFile(path))
