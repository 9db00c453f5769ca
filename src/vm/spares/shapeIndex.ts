/**
 * The spares' index: which shape key a `pyro run` of a given request would
 * compute, for a process without the runtime that computes it (the lean
 * `pyro run`, src/vm/spares/serveRun.ts). A spare's key (`spareKey`) hashes the
 * template's inputs: the environment's root digest and the kernel, initrd and
 * agent digests, which only the full runtime (kernel and environment stores)
 * knows. The filler, which has it, writes one entry per request shape:
 *
 *   <stateDir>/spares/index/<hash of the request>.json → { key, guards }
 *
 * `guards` are the files whose change would change the key (the environment's
 * manifest, root image and install directory's parent, the kernel, the initrd),
 * each with the inode, size and mtime it had. A reader stats them and trusts the
 * entry only when all still match; anything else (no entry, a guard changed or
 * gone, another build of pyro) means "ask the full runtime".
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { createHash } from "node:crypto"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { writeFileAtomic } from "../../host/files.js"
import { sparesRoot } from "./store.js"

/** What a run asks for, as far as its spare's key depends on it beyond the guarded files. */
export interface SpareRequest {
  readonly environment: string
  readonly vcpus: number
  readonly memMib: number
  readonly scratchMib: number
  readonly cacheDir: string
  readonly kernelPath: Option.Option<string>
  readonly kernelModulesDir: Option.Option<string>
  /** The pyro build that computes keys (see `buildIdentity`). */
  readonly build: string
  /** The host's side of the key (`SpareHost`): the QEMU binary, accelerator preference, templates on or off. */
  readonly qemu: string | undefined
  readonly accel: string
  readonly templates: boolean
}

const FileStamp = Schema.Struct({ path: Schema.String, ino: Schema.Number, size: Schema.Number, mtimeMs: Schema.Number })
type FileStamp = typeof FileStamp.Type

const IndexEntry = Schema.Struct({ key: Schema.String, guards: Schema.Array(FileStamp) })
const encodeEntry = Schema.encodeSync(Schema.parseJson(IndexEntry))
const decodeEntry = Schema.decodeUnknownOption(Schema.parseJson(IndexEntry))

const KEY = /^[0-9a-f]{16}$/

const stampOf = (path: string): FileStamp | undefined => {
  const s = Fs.statSync(path, { throwIfNoEntry: false })
  return s ? { path, ino: s.ino, size: s.size, mtimeMs: s.mtimeMs } : undefined
}

/**
 * A build of pyro as the file that runs it (inode, size, change time: a rebuild or an
 * install writes it anew; npm gives every file it installs one mtime, so not that), so
 * an entry written by one build is not read by another that might compute keys differently.
 */
export const buildIdentity = (bundle: string): string | undefined => {
  const s = Fs.statSync(bundle, { throwIfNoEntry: false })
  return s && `${s.ino}-${s.size}-${Math.trunc(s.ctimeMs)}`
}

const entryPath = (stateDir: string, request: SpareRequest) =>
  Path.join(
    sparesRoot(stateDir),
    "index",
    `${
      createHash("sha256").update(JSON.stringify([
        request.environment,
        request.vcpus,
        request.memMib,
        request.scratchMib,
        request.cacheDir,
        Option.getOrNull(request.kernelPath),
        Option.getOrNull(request.kernelModulesDir),
        request.build,
        request.qemu ?? null,
        request.accel,
        request.templates
      ])).digest("hex").slice(0, 32)
    }.json`
  )

/** Record that `request` maps to `key` while `guardPaths` stay as they are now. Best effort: a missing entry only costs speed. */
export const writeSpareIndex = (stateDir: string, request: SpareRequest, key: string, guardPaths: ReadonlyArray<string>) =>
  Effect.suspend(() => {
    const guards = guardPaths.map(stampOf)
    if (guards.some((g) => g === undefined)) return Effect.void
    const path = entryPath(stateDir, request)
    Fs.mkdirSync(Path.dirname(path), { recursive: true, mode: 0o700 })
    return writeFileAtomic(path, encodeEntry({ key, guards: guards as Array<FileStamp> }), 0o600)
  }).pipe(Effect.catchAllDefect(() => Effect.void), Effect.ignore)

/** The key `request` maps to, if its entry exists and every guard is as it was written. */
export const readSpareIndex = (stateDir: string, request: SpareRequest): string | undefined => {
  let text: string
  try {
    text = Fs.readFileSync(entryPath(stateDir, request), "utf8")
  } catch {
    return undefined
  }
  const entry = Option.getOrUndefined(decodeEntry(text))
  if (entry === undefined || !KEY.test(entry.key)) return undefined
  const fresh = entry.guards.every((g) => {
    const now = stampOf(g.path)
    return now !== undefined && now.ino === g.ino && now.size === g.size && now.mtimeMs === g.mtimeMs
  })
  return fresh ? entry.key : undefined
}

/** The files a spare key's inputs are read from, for a spare of `spec`'s environment and boot assets. */
export const keyGuards = (spec: { readonly kernel: string; readonly initrd: string; readonly rootImage: string }, manifestFile: string) => {
  const installDir = Path.dirname(spec.rootImage)
  // The install directory's parent changes when an install of the name is added, replaced or removed.
  return [spec.kernel, spec.initrd, spec.rootImage, Path.join(installDir, manifestFile), Path.dirname(installDir)]
}
