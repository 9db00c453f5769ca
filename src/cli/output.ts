/** Writing to the terminal with backpressure, so large outputs neither pile up in memory nor get cut at exit. */
import * as Effect from "effect/Effect"

const write = (stream: NodeJS.WriteStream, data: Uint8Array | string) =>
  Effect.async<void>((resume) => {
    stream.write(data, () => resume(Effect.void))
  })

export const writeStdout = (data: Uint8Array | string) => write(process.stdout, data)
export const writeStderr = (data: Uint8Array | string) => write(process.stderr, data)

export const printJson = (value: unknown) => writeStdout(`${JSON.stringify(value, null, 2)}\n`)

export const yesNo = (b: boolean) => (b ? "yes" : "no")
