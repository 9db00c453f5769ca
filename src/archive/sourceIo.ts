/** Host calls made on a source (a directory tree, an archive file), their failures as SourceError. */
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import { SourceError } from "./errors.js"

export const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error))

/** A promise-returning host call, its rejection as a SourceError for `source`. */
export const io = <A>(source: string, what: string, f: () => Promise<A>): Effect.Effect<A, SourceError> =>
  Effect.tryPromise({
    try: f,
    catch: (error) => new SourceError({ source, detail: `${what}: ${errorText(error)}` })
  })

/** Opened without following a FIFO's writer: a path swapped for a FIFO fails instead of blocking. */
export const READ_FLAGS = Fs.constants.O_RDONLY | Fs.constants.O_NONBLOCK
