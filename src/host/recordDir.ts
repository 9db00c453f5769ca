/**
 * A directory of records, one subdirectory per id holding one JSON file
 * validated by a schema and written atomically: persistent VMs and
 * workspaces. A record that is missing or does not parse reads as absent.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Fs from "node:fs"
import { writeFileAtomic } from "./files.js"

export const recordDir = <A extends { readonly id: string }, I>(
  schema: Schema.Schema<A, I>,
  root: (stateDir: string) => string,
  file: (stateDir: string, id: string) => string
) => {
  const decode = Schema.decodeUnknownOption(Schema.parseJson(schema))
  const encode = Schema.encodeSync(Schema.parseJson(schema, { space: 2 }))

  /**
   * The last text read of each file and what it decoded to: a record is read
   * on every call (a keystroke in a shell is two), and decoding costs more
   * than reading; the same text decodes the same.
   */
  const decoded = new Map<string, { readonly text: string; readonly record: Option.Option<A> }>()

  /** A blocking read, like the write: a record is read several times per workspace command. */
  const read = (stateDir: string, id: string) =>
    Effect.sync(() => {
      const path = file(stateDir, id)
      let text: string
      try {
        text = Fs.readFileSync(path, "utf8")
      } catch {
        decoded.delete(path)
        return Option.none<A>()
      }
      const known = decoded.get(path)
      if (known?.text === text) return known.record
      const record = decode(text)
      decoded.set(path, { text, record })
      return record
    })

  const write = (stateDir: string, record: A) => writeFileAtomic(file(stateDir, record.id), encode(record), 0o600)

  const list = (stateDir: string) =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const ids = yield* fs.readDirectory(root(stateDir)).pipe(Effect.orElseSucceed(() => []))
      const records: Array<A> = []
      for (const id of ids.sort()) {
        const record = yield* read(stateDir, id)
        if (Option.isSome(record)) records.push(record.value)
      }
      return records
    })

  return { read, write, list, decode }
}
