/**
 * What may cross from an untrusted source into a destination directory DEST:
 * a pure check of the source's entries, in order, the same for archives and
 * directory trees and in both directions (an import: host files into the
 * guest; an export: the guest's files onto the host). No I/O.
 *
 * Whoever extracts the result (the agent's untar for an import, the host for
 * an export) must not be led to write outside DEST or to leave a link
 * pointing out of it, even by an extractor that follows the links it has just
 * created, so the policy refuses:
 *
 * - names: absolute, with a `..` component, with a NUL byte, longer than 4096
 *   bytes (or a component longer than 255), or empty;
 * - an entry whose parent path passes through a symlink of the same source
 *   (the "write through a symlink" escape), and any entry that would replace a
 *   symlink or be a symlink replacing an earlier entry;
 * - symlinks to an absolute path, or whose target resolves outside DEST from
 *   the link's directory, following the source's other symlinks as the kernel
 *   would (including ones that come later in the source: adding a symlink
 *   re-checks every earlier symlink whose target passed through its path);
 *   symlink loops are refused too;
 * - hard links whose target is not an earlier regular file of the same source;
 * - character and block devices, FIFOs, sockets;
 * - past the pass's limits (`EntryLimits`): a name nested too deep, one entry
 *   too many, content bytes over the total. An import sets none.
 *
 * setuid and setgid bits are cleared rather than refused; the verdict says
 * when that happened so the caller can list the entry. The output is owned by
 * root whatever the source says, with mtimes in whole seconds.
 *
 * A policy is stateful (it remembers the entries seen so far) and meant for
 * one pass over one source; after a refusal the pass is over.
 */

export type EntryType =
  | "file"
  | "directory"
  | "symlink"
  | "hardlink"
  | "character-device"
  | "block-device"
  | "fifo"
  | "socket"

/** An entry as a source presents it: a tar header, or what lstat saw. */
export interface EntryInput {
  /** The name as stored, relative to the source's root (not yet normalised). */
  readonly path: string
  readonly type: EntryType
  readonly mode: number
  /** Content bytes (regular files only). */
  readonly size: number
  /** Seconds since the epoch, possibly fractional. */
  readonly mtime: number
  /** Target of a symlink or hard link ("" otherwise). */
  readonly linkname: string
}

export type SafeEntryType = "file" | "directory" | "symlink" | "hardlink"

/** An entry that may be sent, as it will be written. */
export interface SafeEntry {
  /** Normalised: relative, no `.` components, no empty components, no trailing slash. */
  readonly path: string
  readonly type: SafeEntryType
  /** Permission bits with setuid and setgid cleared (0o777 for symlinks). */
  readonly mode: number
  /** Content bytes; 0 unless a regular file. */
  readonly size: number
  /** Whole seconds since the epoch, not negative. */
  readonly mtime: number
  /** Symlinks: the target as given. Hard links: the normalised path of the earlier file. Otherwise "". */
  readonly linkname: string
}

export type Verdict =
  /** The root entry (`.`, `./`): the destination itself, not sent. */
  | { readonly _tag: "Skip" }
  | { readonly _tag: "Accept"; readonly entry: SafeEntry; readonly neutralised: boolean }
  | { readonly _tag: "Refuse"; readonly reason: string }

export interface EntryPolicy {
  readonly check: (input: EntryInput) => Verdict
}

/** Bounds on one pass, for a source that could otherwise flood the destination's side. */
export interface EntryLimits {
  /** Entries accepted (the root, skipped, not counted). */
  readonly maxEntries: number
  /** Content bytes of all regular files together. */
  readonly maxBytes: number
  /** Components of a normalised name (`a/b/c` is 3). */
  readonly maxDepth: number
}

/** No bounds beyond those on names (an import's: the guest's disk bounds what it takes). */
export const UNBOUNDED: EntryLimits = { maxEntries: Infinity, maxBytes: Infinity, maxDepth: Infinity }

export const MAX_NAME_BYTES = 4096
export const MAX_COMPONENT_BYTES = 255
/** Links followed while resolving one symlink target, as Linux's MAXSYMLINKS. */
export const MAX_SYMLINK_HOPS = 40
const SETID_BITS = 0o6000

const encoder = new TextEncoder()
const byteLength = (s: string) => encoder.encode(s).byteLength
const quote = (s: string) => JSON.stringify(s.length > 200 ? `${s.slice(0, 200)}...` : s)

const skip: Verdict = { _tag: "Skip" }
const refuse = (reason: string): Verdict => ({ _tag: "Refuse", reason })

/** Problems shared by entry names and link targets. */
const textProblem = (text: string, what: string): string | undefined => {
  if (text === "") return `has an empty ${what}`
  if (text.includes("\0")) return `has a NUL byte in its ${what}`
  if (byteLength(text) > MAX_NAME_BYTES) return `has a ${what} longer than ${MAX_NAME_BYTES} bytes`
  return undefined
}

/**
 * The components of a relative name with `.` and empty components dropped
 * (so a leading `./` and a trailing `/` go), or why the name is unsafe.
 */
export const normaliseName = (
  name: string
): { readonly _tag: "Name"; readonly parts: ReadonlyArray<string> } | { readonly _tag: "Unsafe"; readonly problem: string } => {
  const unsafe = (problem: string) => ({ _tag: "Unsafe", problem }) as const
  const problem = textProblem(name, "name")
  if (problem !== undefined) return unsafe(problem)
  if (name.startsWith("/")) return unsafe("has an absolute path")
  const parts = name.split("/").filter((part) => part !== "" && part !== ".")
  if (parts.includes("..")) return unsafe("has a \"..\" component in its path")
  if (parts.some((part) => byteLength(part) > MAX_COMPONENT_BYTES)) {
    return unsafe(`has a path component longer than ${MAX_COMPONENT_BYTES} bytes`)
  }
  return { _tag: "Name", parts }
}

const REFUSED_TYPES: Partial<Record<EntryType, string>> = {
  "character-device": "is a character device",
  "block-device": "is a block device",
  fifo: "is a FIFO (named pipe)",
  socket: "is a socket"
}

interface Symlink {
  readonly dir: ReadonlyArray<string>
  readonly target: string
}

type Resolution = { readonly _tag: "Inside"; readonly traversed: ReadonlyArray<string> } | { readonly _tag: "Outside" } | {
  readonly _tag: "Loop"
}

export const makeEntryPolicy = (limits: EntryLimits = UNBOUNDED): EntryPolicy => {
  /** What each path is so far; parents created implicitly count as directories. */
  const kinds = new Map<string, SafeEntryType>()
  const symlinks = new Map<string, Symlink>()
  /** For each path some symlink's target passes through as a directory: those symlinks. */
  const dependents = new Map<string, Set<string>>()
  /** Entries accepted and their content bytes so far, against `limits`. */
  let accepted = 0
  let bytes = 0

  /**
   * Where `target`, read from directory `dir`, leads once the source's symlinks
   * are followed: still inside the root, outside it, or round a loop. Records
   * the paths it went through as directories (a symlink added there later
   * changes the answer).
   */
  const resolve = (dir: ReadonlyArray<string>, target: string): Resolution => {
    const current = [...dir]
    const pending = target.split("/").reverse()
    const traversed: Array<string> = []
    let hops = 0
    const more = () => pending.some((part) => part !== "" && part !== ".")
    while (pending.length > 0) {
      const part = pending.pop()!
      if (part === "" || part === ".") continue
      if (part === "..") {
        if (current.length === 0) return { _tag: "Outside" }
        current.pop()
        continue
      }
      current.push(part)
      if (!more()) break // the last component: a symlink there is checked on its own
      const path = current.join("/")
      const link = symlinks.get(path)
      if (link === undefined) {
        traversed.push(path)
        continue
      }
      if (++hops > MAX_SYMLINK_HOPS) return { _tag: "Loop" }
      if (link.target.startsWith("/")) return { _tag: "Outside" } // never accepted; defensive
      current.pop()
      pending.push(...link.target.split("/").reverse())
    }
    return { _tag: "Inside", traversed }
  }

  const remember = (link: string, traversed: ReadonlyArray<string>) => {
    for (const path of traversed) {
      const set = dependents.get(path) ?? new Set<string>()
      set.add(link)
      dependents.set(path, set)
    }
  }

  const outsideReason = (resolution: Resolution, target: string) =>
    resolution._tag === "Loop"
      ? `is a symlink to ${quote(target)}, which goes round a symlink loop (or a chain of more than ${MAX_SYMLINK_HOPS} links)`
      : `is a symlink to ${quote(target)}, which resolves outside the destination`

  const checkSymlink = (path: string, parts: ReadonlyArray<string>, target: string): string | undefined => {
    const problem = textProblem(target, "symlink target")
    if (problem !== undefined) return problem
    if (target.startsWith("/")) return `is a symlink to an absolute path (${quote(target)})`
    const link: Symlink = { dir: parts.slice(0, -1), target }
    symlinks.set(path, link)
    const own = resolve(link.dir, target)
    if (own._tag !== "Inside") return outsideReason(own, target)
    remember(path, own.traversed)
    for (const earlier of dependents.get(path) ?? []) {
      if (earlier === path) continue
      const other = symlinks.get(earlier)!
      const again = resolve(other.dir, other.target)
      if (again._tag !== "Inside") {
        return `is a symlink that would make the earlier symlink ${quote(earlier)} (to ${quote(other.target)}) ` +
          (again._tag === "Loop" ? "go round a loop" : "resolve outside the destination")
      }
      remember(earlier, again.traversed)
    }
    return undefined
  }

  const check = (input: EntryInput): Verdict => {
    const name = normaliseName(input.path)
    if (name._tag === "Unsafe") return refuse(name.problem)
    const parts = name.parts
    const refusedType = REFUSED_TYPES[input.type]
    if (refusedType !== undefined) return refuse(refusedType)
    if (parts.length === 0) {
      return input.type === "directory" ? skip : refuse("names the destination directory itself but is not a directory")
    }
    const path = parts.join("/")
    if (parts.length > limits.maxDepth) return refuse(`is nested ${parts.length} deep, more than the ${limits.maxDepth} allowed`)

    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join("/")
      if (symlinks.has(parent)) return refuse(`would be written through the symlink ${quote(parent)} defined earlier in the source`)
    }
    const existing = kinds.get(path)
    if (existing === "symlink") return refuse("would replace the symlink of the same name defined earlier in the source")
    if (input.type === "symlink" && existing !== undefined) {
      return refuse("is a symlink that would replace an earlier entry of the same name")
    }

    const type = input.type as SafeEntryType
    let linkname = ""
    if (type === "symlink") {
      const problem = checkSymlink(path, parts, input.linkname)
      if (problem !== undefined) return refuse(problem)
      linkname = input.linkname
    } else if (type === "hardlink") {
      const target = normaliseName(input.linkname)
      if (target._tag === "Unsafe") {
        return refuse(
          input.linkname.startsWith("/")
            ? `is a hard link to an absolute path (${quote(input.linkname)})`
            : `is a hard link whose target ${target.problem.replace(/ in its name$/, "")}`
        )
      }
      linkname = target.parts.join("/")
      if (linkname === path) return refuse("is a hard link to itself")
      const kind = kinds.get(linkname)
      if (kind !== "file" && kind !== "hardlink") {
        return refuse(`is a hard link to ${quote(input.linkname)}, which is not a regular file earlier in the source`)
      }
    }

    const size = type === "file" ? input.size : 0
    if (accepted >= limits.maxEntries) return refuse(`is one entry more than the ${limits.maxEntries} allowed`)
    if (bytes + size > limits.maxBytes) {
      return refuse(`would bring the content to ${bytes + size} bytes, more than the ${limits.maxBytes} allowed`)
    }
    accepted++
    bytes += size

    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join("/")
      if (!kinds.has(parent)) kinds.set(parent, "directory")
    }
    kinds.set(path, type)

    const setid = type === "file" || type === "directory" ? input.mode & SETID_BITS : 0
    const mode = type === "symlink" ? 0o777 : input.mode & 0o7777 & ~SETID_BITS
    const mtime = Number.isFinite(input.mtime) ? Math.max(0, Math.floor(input.mtime)) : 0
    return {
      _tag: "Accept",
      entry: { path, type, mode, size, mtime, linkname },
      neutralised: setid !== 0
    }
  }

  return { check }
}
