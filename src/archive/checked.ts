/**
 * A tar stream from an untrusted source, each entry checked by the path policy
 * (./policy.ts) in order. `readCheckedTar` drives one pass; `sanitizedTar`
 * turns that callback-style pass into a pull-based stream of the sanitized
 * archive through a bounded queue, so a slow consumer slows the reading of the
 * source.
 */
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import * as Take from "effect/Take"
import { InvalidTar, RefusedEntry, SourceError } from "./errors.js"
import { type EntryLimits, makeEntryPolicy, type SafeEntry } from "./policy.js"
import { readTar, type TarEntryBody } from "./read.js"
import { tarEnd, tarHeader, tarPadding } from "./write.js"

/** Chunks in flight between the reading fiber and the consumer (each at most ~64 KiB). */
const QUEUE_CHUNKS = 16

/**
 * One pass over the tar `bytes` of `source`: `onEntry` gets each accepted entry
 * (and its content, which it may read or leave) in order; the first refused
 * entry fails the pass with RefusedEntry. Malformed tar data fails it with a
 * SourceError, and so does a stream that stops without its end-of-archive
 * marker (the reader tolerates that; from a source it means truncation).
 */
export const readCheckedTar = <SE, E>(
  bytes: Stream.Stream<Uint8Array, SE>,
  source: string,
  limits: EntryLimits,
  onEntry: (
    entry: SafeEntry,
    neutralised: boolean,
    body: TarEntryBody<SE, never>
  ) => Effect.Effect<void, E | SE | InvalidTar>
): Effect.Effect<void, Exclude<E | SE, InvalidTar> | RefusedEntry | SourceError> =>
  Effect.suspend(() => {
    const policy = makeEntryPolicy(limits)
    let endOfInput = false
    const marked = Stream.concat(bytes, Stream.drain(Stream.fromEffect(Effect.sync(() => void (endOfInput = true)))))
    return readTar(marked, source, (entry, body): Effect.Effect<void, E | SE | InvalidTar | RefusedEntry> => {
      const verdict = policy.check(entry)
      switch (verdict._tag) {
        case "Skip":
          return Effect.void
        case "Refuse":
          return Effect.fail(new RefusedEntry({ source, entry: entry.path, reason: verdict.reason }))
        case "Accept":
          return onEntry(verdict.entry, verdict.neutralised, body)
      }
    }).pipe(
      Effect.catchIf((error): error is InvalidTar => error instanceof InvalidTar, (error) =>
        Effect.fail(
          new SourceError({
            source,
            detail: `not a valid tar archive (corrupt, truncated or unsupported): ${error.detail}`
          })
        )),
      Effect.zipRight(Effect.suspend(() =>
        endOfInput
          ? Effect.fail(
            new SourceError({ source, detail: "truncated archive: it ends without the end-of-archive marker" })
          )
          : Effect.void
      ))
    )
  })

/** The sanitized tar stream of `bytes`: accepted entries rewritten (./write.ts), produced as the consumer pulls. */
export const sanitizedTar = <SE>(
  bytes: Stream.Stream<Uint8Array, SE>,
  source: string,
  limits: EntryLimits
): Stream.Stream<Uint8Array, Exclude<SE, InvalidTar> | RefusedEntry | SourceError> =>
  Stream.unwrapScoped(Effect.gen(function*() {
    type Failure = Exclude<SE, InvalidTar> | RefusedEntry | SourceError
    const queue = yield* Effect.acquireRelease(Queue.bounded<Take.Take<Uint8Array, Failure>>(QUEUE_CHUNKS), Queue.shutdown)
    const emit = (chunk: Uint8Array) => chunk.byteLength === 0 ? Effect.void : Queue.offer(queue, Take.of(chunk))
    yield* readCheckedTar(bytes, source, limits, (entry, _neutralised, body) =>
      Effect.gen(function*() {
        yield* emit(tarHeader(entry))
        if (entry.type !== "file") return
        yield* body.forEachChunk(emit)
        yield* emit(tarPadding(entry.size))
      })).pipe(
        Effect.zipRight(emit(tarEnd())),
        Effect.matchCauseEffect({
          onFailure: (cause) => Queue.offer(queue, Take.failCause(cause)),
          onSuccess: () => Queue.offer(queue, Take.end)
        }),
        Effect.forkScoped
      )
    return Stream.flattenTake(Stream.fromQueue(queue))
  }))
