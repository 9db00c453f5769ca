/**
 * A command's output held in memory: its head up to a cap, and always its
 * last bytes, so that a result can show how the output began and how it
 * ended whatever its size. Bytes between the two are counted, not kept.
 */

/** How much of a stream's end is always kept (the largest tail a result can carry). */
export const TAIL_BYTES = 256 * 1024

export class CappedOutput {
  /** The head, in one buffer grown by doubling: a guest's tiny chunks cost no object each. */
  private head = new Uint8Array(0)
  private kept = 0
  /** The last bytes past the head, in a ring of `tailCap` bytes made on first use. */
  private ring: Uint8Array | undefined
  private ringEnd = 0
  private ringFill = 0
  total = 0

  constructor(readonly cap: number, readonly tailCap: number = TAIL_BYTES) {}

  push(bytes: Uint8Array) {
    if (bytes.byteLength === 0) return
    this.total += bytes.byteLength
    const take = Math.min(Math.max(0, this.cap - this.kept), bytes.byteLength)
    if (take > 0) {
      this.reserve(this.kept + take)
      this.head.set(bytes.subarray(0, take), this.kept)
      this.kept += take
    }
    if (take < bytes.byteLength) this.pushOverflow(bytes.subarray(take))
  }

  private reserve(size: number) {
    if (size <= this.head.byteLength) return
    const grown = new Uint8Array(Math.min(this.cap, Math.max(size, 2 * this.head.byteLength, 4096)))
    grown.set(this.head.subarray(0, this.kept))
    this.head = grown
  }

  private pushOverflow(bytes: Uint8Array) {
    if (this.tailCap === 0) return
    const ring = (this.ring ??= new Uint8Array(this.tailCap))
    const part = bytes.byteLength > this.tailCap ? bytes.subarray(bytes.byteLength - this.tailCap) : bytes
    const first = Math.min(part.byteLength, this.tailCap - this.ringEnd)
    ring.set(part.subarray(0, first), this.ringEnd)
    ring.set(part.subarray(first), 0)
    this.ringEnd = (this.ringEnd + part.byteLength) % this.tailCap
    this.ringFill = Math.min(this.tailCap, this.ringFill + part.byteLength)
  }

  /** More was written than the head holds. */
  get truncated() {
    return this.total > this.kept
  }

  /** The head: the first `cap` bytes (a copy, to keep). */
  bytes(): Uint8Array {
    return this.head.slice(0, this.kept)
  }

  /** The head without copying it: valid until the next push (for shaping and sending a finished stream). */
  view(): Uint8Array {
    return this.head.subarray(0, this.kept)
  }

  text(): string {
    return Buffer.from(this.head.buffer, this.head.byteOffset, this.kept).toString("utf8")
  }

  /** The overflow ring's bytes, oldest first. */
  private overflow(): Uint8Array {
    if (!this.ring || this.ringFill === 0) return new Uint8Array(0)
    const start = (this.ringEnd - this.ringFill + this.tailCap) % this.tailCap
    if (start + this.ringFill <= this.tailCap) return this.ring.subarray(start, start + this.ringFill)
    return Buffer.concat([this.ring.subarray(start), this.ring.subarray(0, this.ringEnd)])
  }

  /**
   * The last `n` bytes written (at most `tailCap`). Until the ring wrapped the
   * overflow follows the head without a gap, so the head's end makes up what
   * the overflow lacks.
   */
  tail(n: number): Uint8Array {
    const want = Math.min(n, this.tailCap, this.total)
    const overflow = this.overflow()
    if (overflow.byteLength >= want) return overflow.slice(overflow.byteLength - want)
    return Buffer.concat([this.head.subarray(this.kept - (want - overflow.byteLength), this.kept), overflow])
  }
}

export interface ShapedText {
  readonly text: string
  /** The text is not the whole stream. */
  readonly truncated: boolean
}

/** How much of a stream's beginning and of its end a text keeps when it cannot keep all of it. */
export interface OutputBudget {
  readonly head: number
  readonly tail: number
}

/** `bytes` evenly: half to the head, half to the tail. */
export const evenBudget = (bytes: number): OutputBudget => ({ head: Math.floor(bytes / 2), tail: Math.ceil(bytes / 2) })

export const budgetBytes = (budget: OutputBudget) => budget.head + budget.tail

/** A UTF-8 sequence is at most 4 bytes: a cut moves at most 3 to avoid splitting one. */
const MAX_CONTINUATION = 3

/** `n` pulled back so that bytes[0, n) does not end inside a UTF-8 sequence. */
const headCut = (bytes: Uint8Array, n: number) => {
  const at = Math.min(n, bytes.byteLength)
  let cut = at
  while (cut > 0 && at - cut < MAX_CONTINUATION && cut < bytes.byteLength && (bytes[cut]! & 0xc0) === 0x80) cut--
  // Not UTF-8 there (binary output): cut where asked.
  return cut < bytes.byteLength && (bytes[cut]! & 0xc0) === 0x80 ? at : cut
}

/** The first index at or after `start` that begins a UTF-8 sequence. */
const tailCut = (bytes: Uint8Array, start: number) => {
  const at = Math.max(0, start)
  let cut = at
  while (cut < bytes.byteLength && cut - at < MAX_CONTINUATION && (bytes[cut]! & 0xc0) === 0x80) cut++
  return cut < bytes.byteLength && (bytes[cut]! & 0xc0) === 0x80 ? at : cut
}

const decode = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8")

/**
 * A stream of `total` bytes as text within `budget`: whole if it fits; else
 * its head and its tail with a marker between them that says how much was
 * left out and, when given, where all of it was kept. The two never overlap:
 * the tail starts after the head ends.
 */
export const shapeOutput = (options: {
  readonly name: "stdout" | "stderr"
  /** The stream's first bytes (at least `budget.head` of them when there are that many). */
  readonly head: Uint8Array
  /** The stream's last bytes (at least `budget.tail` of them when there are that many). */
  readonly tail: Uint8Array
  readonly total: number
  readonly budget: OutputBudget
  /** Where all of the stream was kept, as a phrase for the marker ("all of it is in /run/..."). */
  readonly keptAt?: string | undefined
}): ShapedText => {
  const { head, tail, total, budget } = options
  if (total <= budgetBytes(budget) && head.byteLength >= total) {
    return { text: decode(head.subarray(0, total)), truncated: false }
  }
  const first = head.subarray(0, headCut(head, budget.head))
  // `tail` holds stream offsets [total - tail.length, total); keep only what follows `first`.
  const tailOffset = total - tail.byteLength
  const from = Math.max(tail.byteLength - budget.tail, first.byteLength - tailOffset, 0)
  const last = from >= tail.byteLength ? new Uint8Array(0) : tail.subarray(tailCut(tail, from))
  const omitted = total - first.byteLength - last.byteLength
  if (omitted <= 0) return { text: decode(first) + decode(last), truncated: false }
  const where = options.keptAt ? `; ${options.keptAt}` : ""
  const marker = `\n[pyro: ${omitted} of ${total} bytes of ${options.name} left out here${where}]\n`
  return { text: decode(first) + marker + decode(last), truncated: true }
}

/** The shaped text of a captured stream. */
export const shapeCaptured = (
  name: "stdout" | "stderr",
  out: CappedOutput,
  budget: OutputBudget,
  keptAt?: string
): ShapedText =>
  shapeOutput({ name, head: out.view(), tail: out.tail(budget.tail), total: out.total, budget, keptAt })
