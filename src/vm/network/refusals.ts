/**
 * What the allowlist proxy refused, as vm_network_info reports it. The proxy
 * (allowProxy.ts) runs for the guest, so its files are read as untrusted:
 * bounded, line by line, each line checked.
 *
 *   DIR/refused        JSON lines {at, host, reason}, appended (O_APPEND);
 *                      renamed to refused.1 once past REFUSED_LOG_ROTATE_BYTES
 *   DIR/refused-count  one byte appended per refusal: its size is the count
 */
import * as Fs from "node:fs"
import * as Path from "node:path"

export const REFUSED_LOG = "refused"
export const REFUSED_LOG_OLD = "refused.1"
export const REFUSED_COUNT = "refused-count"
export const REFUSED_LOG_ROTATE_BYTES = 64 * 1024
/** How many of the latest refusals vm_network_info lists. */
export const RECENT_REFUSALS = 5
const TAIL_BYTES = 8 * 1024
const FIELD_CHARS = 300

export interface Refusal {
  readonly at: string
  readonly host: string
  readonly reason: string
}

/** The refusal a JSON line says, if it is one; strings cut to a size a result can carry. */
export const parseRefusal = (line: string): Refusal | undefined => {
  try {
    const value = JSON.parse(line) as unknown
    if (value === null || typeof value !== "object") return undefined
    const { at, host, reason } = value as Record<string, unknown>
    if (typeof at !== "string" || typeof host !== "string" || typeof reason !== "string") return undefined
    return { at: at.slice(0, 40), host: host.slice(0, FIELD_CHARS), reason: reason.slice(0, FIELD_CHARS) }
  } catch {
    return undefined
  }
}

/** The complete lines in the last TAIL_BYTES of a file (none if it is missing). */
const tailLines = (file: string): Array<string> => {
  let fd: number
  try {
    fd = Fs.openSync(file, Fs.constants.O_RDONLY | Fs.constants.O_NOFOLLOW | Fs.constants.O_NONBLOCK)
  } catch {
    return []
  }
  try {
    const stat = Fs.fstatSync(fd)
    if (!stat.isFile()) return []
    const length = Math.min(stat.size, TAIL_BYTES)
    const buffer = Buffer.alloc(length)
    const read = Fs.readSync(fd, buffer, 0, length, stat.size - length)
    const lines = buffer.subarray(0, read).toString("utf8").split("\n")
    lines.pop() // after the last newline: empty, or a line still being written
    if (stat.size > length) lines.shift() // cut at the start
    return lines
  } finally {
    Fs.closeSync(fd)
  }
}

const sizeOf = (file: string): number => {
  try {
    const stat = Fs.lstatSync(file)
    return stat.isFile() ? stat.size : 0
  } catch {
    return 0
  }
}

/** How many connections the proxy refused, and the latest few (newest last). */
export const readRefusals = (dir: string): { readonly count: number; readonly recent: ReadonlyArray<Refusal> } => {
  const parse = (file: string) => tailLines(Path.join(dir, file)).map(parseRefusal).filter((r) => r !== undefined)
  let recent = parse(REFUSED_LOG)
  if (recent.length < RECENT_REFUSALS) recent = [...parse(REFUSED_LOG_OLD), ...recent]
  return { count: sizeOf(Path.join(dir, REFUSED_COUNT)), recent: recent.slice(-RECENT_REFUSALS) }
}
